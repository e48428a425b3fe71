// qmoe reproduce --table 1|2|specialisation: trains every cell of the paper's
// Table I or II, or of the specialisation study (issue 19; configs in
// experiments/table1, table2, specialisation), several seeds each, and writes
// results/table{1,2}.json (scripts/report.py makes results/README.md of them)
// or results/specialisation.{json,md}.
// Resumable: a finished run (runs/<cell>-s<seed>/result.json) is not run again,
// an interrupted one continues from its checkpoint. Runs go two at a time, one
// thread each (threads inside one small batch would mostly wait); under
// mpirun every rank takes runs, one at a time, as rank 0 hands them out.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "cli/cli.hpp"
#include "cli/mpi.hpp"
#include "cli/train_common.hpp"
#include "model/json_integer.hpp"
#include "model/routing_loss.hpp"
#include "model/specialisation.hpp"
#include "train/checkpoint.hpp"
#include "train/hard_routing.hpp"

namespace qmoe::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Args {
  std::string table = "1";  // "1", "2" or "specialisation"
  int seeds = 3;
  std::string out;          // "": results/ beside the experiments directory
  std::string experiments;  // "": ./experiments, else the one beside the qmoe binary's build directory
  std::string data_dir;
  int jobs = 2;
  bool json = false;
  bool jobs_given = false;  // under mpirun the default is 1 run at a time per rank
  int epochs = -1;        // override experiments/common.json
  long train_limit = -1;  // override (smoke tests)
  long test_limit = -1;
};

struct Cell {
  std::string task, model, ops;
  int experts = 4;
  std::string variant;  // specialisation study: the variant's name (its file's, minus the task)
  json overrides = json::object();  // specialisation study: model config fields on top of common.json
  std::string baseline;             // specialisation study: the variant of its parameter-matched QNN
  std::string name() const {
    return variant.empty() ? task + "-" + model + "-" + ops + "-L" + std::to_string(experts) : task + "-" + variant;
  }
};

json read_json(const fs::path& p) {
  std::ifstream f(p);
  if (!f) throw std::runtime_error("cannot open " + p.string());
  json j = json::parse(f, nullptr, false);
  if (j.is_discarded()) throw std::runtime_error(p.string() + " is not valid JSON");
  return j;
}

// j[key] as T; a wrong type is one line naming the file and the field.
template <class T>
T field(const json& j, const std::string& key, const fs::path& file, const T& fallback) {
  if (!j.contains(key)) return fallback;
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    throw std::runtime_error(file.string() + ": \"" + key + "\" has the wrong type (" + j.at(key).dump() + ")");
  }
}

// The experiments directory: the flag, else ./experiments, else the one in the
// source tree beside the binary's build directory (build/qmoe -> experiments/),
// so `reproduce` works from any directory.
fs::path experiments_dir(const std::string& flag) {
  if (!flag.empty()) return flag;
  const std::string found = source_path("experiments/common.json");
  if (found.empty()) throw std::runtime_error("no experiments directory here or beside the qmoe binary: give --experiments DIR");
  return fs::path(found).parent_path();
}

// The cells the paper's table has (a missing config file is reported, not skipped silently).
std::vector<Cell> paper_cells(int table) {
  std::vector<Cell> cells;
  const auto add = [&cells](const char* task, const char* model, const char* ops, int experts) {
    Cell c;
    c.task = task, c.model = model, c.ops = ops, c.experts = experts;
    cells.push_back(c);
  };
  for (const char* ops : {"rx", "ry", "rxry", "rxryrz"}) {
    if (table == 2) {
      for (int L : {2, 3, 4}) add("mnist4", "qmoe", ops, L);
      continue;
    }
    for (const char* task : {"mnist4", "mnist2", "fashion4", "fashion2"})
      for (const char* model : {"qnn", "qnn-matched", "qmoe"}) add(task, model, ops, 4);
  }
  return cells;
}

// A cell's model: the common settings, the cell's ops and experts, the task's
// classes and features, then (specialisation study) the cell's "config" fields
// on top, resolved for the cell's model name. Validated (throws std::invalid_argument).
model::ModelConfig cell_model(const Cell& c, const json& common, int n_classes, int n_features) {
  model::ModelConfig mc = model::ModelConfig::from_json(common.at("model"));
  mc.ops = c.ops;
  mc.experts = c.experts;
  mc.n_classes = n_classes;
  mc.n_features = n_features;
  if (!c.overrides.empty()) {
    json j = mc.to_json();
    j.merge_patch(c.overrides);
    mc = model::ModelConfig::from_json(j);
  }
  return resolve_model(mc, c.model);
}

// Reads and checks one cell file: keys, types, and that its model builds with
// the common settings (so a typo fails before any run is trained). Cells of the
// specialisation study (spec) may also have "config" (model config fields on
// top of its common.json) and "baseline" (the variant of its matched QNN), and
// are named <task>-<variant>.json.
Cell read_cell(const fs::path& f, const json& common, bool spec) {
  const json j = read_json(f);
  if (!j.is_object()) throw std::runtime_error(f.string() + ": expected a JSON object");
  for (const auto& [key, value] : j.items())
    if (key != "task" && key != "model" && key != "ops" && key != "experts" &&
        !(spec && (key == "config" || key == "baseline")))
      throw std::runtime_error(f.string() + ": unknown key \"" + key + "\" (a cell has task, model, ops, experts" +
                               (spec ? ", config, baseline)" : ")"));
  for (const char* key : {"task", "model", "ops"})
    if (!j.contains(key)) throw std::runtime_error(f.string() + ": \"" + key + "\" is missing");
  Cell c;
  c.task = field<std::string>(j, "task", f, "");
  c.model = field<std::string>(j, "model", f, "");
  c.ops = field<std::string>(j, "ops", f, "");
  c.experts = field<int>(j, "experts", f, 4);
  if (spec) {
    c.overrides = field<json>(j, "config", f, json::object());
    if (!c.overrides.is_object()) throw std::runtime_error(f.string() + ": \"config\" must be a JSON object");
    c.baseline = field<std::string>(j, "baseline", f, "");
    const std::string stem = f.stem().string();  // <task>-<variant>.json
    if (stem.rfind(c.task + "-", 0) != 0)
      throw std::runtime_error(f.string() + ": the file name must start with its task, \"" + c.task + "-\"");
    c.variant = stem.substr(c.task.size() + 1);
  }
  const data::TaskInfo* t = data::find_task(c.task);
  if (!t) throw std::runtime_error(f.string() + ": unknown task \"" + c.task + "\" (valid: " + data::task_list() + ")");
  if (c.model != "qmoe" && c.model != "qnn" && c.model != "qnn-matched" && c.model != "sum")
    throw std::runtime_error(f.string() + ": unknown model \"" + c.model + "\" (valid: qmoe, qnn, qnn-matched, sum)");
  try {
    cell_model(c, common, int(t->labels.size()), model::ModelConfig::from_json(common.at("model")).n_features);
  } catch (const std::exception& e) {
    throw std::runtime_error(f.string() + ": " + e.what());
  }
  return c;
}

// The paper's numbers (Table I: 4 experts; Table II: MNIST-4, 2/3/4 experts).
double paper_value(const Cell& c) {
  static const std::map<std::string, std::vector<double>> t1_base = {
      {"rx", {49.87, 92.99, 49.53, 74.60}}, {"ry", {49.27, 93.04, 49.13, 75.35}},
      {"rxry", {51.05, 94.89, 52.58, 78.35}}, {"rxryrz", {51.47, 94.68, 53.65, 79.94}}};
  static const std::map<std::string, std::vector<double>> t1_qmoe = {
      {"rx", {60.99, 96.53, 61.98, 82.83}}, {"ry", {60.29, 97.13, 60.44, 82.47}},
      {"rxry", {62.92, 98.62, 63.47, 83.94}}, {"rxryrz", {61.26, 97.29, 63.81, 84.46}}};
  static const std::map<std::string, std::vector<double>> t2 = {
      {"rx", {54.33, 58.54, 60.99}}, {"ry", {54.15, 58.88, 60.29}},
      {"rxry", {54.38, 59.67, 62.92}}, {"rxryrz", {55.97, 59.81, 61.26}}};
  const std::vector<std::string> tasks = {"mnist4", "mnist2", "fashion4", "fashion2"};
  const auto ti = std::find(tasks.begin(), tasks.end(), c.task) - tasks.begin();
  if (ti >= 4 || !t1_qmoe.count(c.ops)) return NAN;
  if (c.model == "qmoe" && c.experts != 4) return (c.task == "mnist4" && c.experts >= 2) ? t2.at(c.ops)[std::size_t(c.experts - 2)] : NAN;
  if (c.model == "qmoe") return t1_qmoe.at(c.ops)[std::size_t(ti)];
  if (c.model == "qnn") return t1_base.at(c.ops)[std::size_t(ti)];
  return NAN;
}

// I(class; expert) in bits, expert usage and the mean routing entropy of a
// trained QMoE on the test split; for sampled routing from the measured
// choices, with the estimator's bias and spread on one training batch.
json routing_summary(const model::Model& m, const std::vector<double>& theta, const train::Evaluation& ev,
                     const data::TaskData& td) {
  const int L = m.config.experts;
  json out;
  const auto soft = model::routing_joint(ev.routing_by_class, td.test.class_counts());
  out["mi_soft_bits"] = model::mutual_information_bits(soft);
  out["usage_soft"] = model::expert_usage(soft);
  out["entropy_nats"] = model::mean_routing_entropy(ev.routing.data(), int(td.test.size()), L);
  if (m.config.routing == model::Routing::Sampled) {
    std::vector<std::vector<double>> chosen = ev.choice_counts;
    for (auto& row : chosen) row.resize(std::size_t(L));  // states selecting no expert dropped
    out["mi_bits"] = model::mutual_information_bits(chosen);
    out["usage"] = model::expert_usage(chosen);
    out["choice_counts"] = ev.choice_counts;
    const train::EstimatorStats es = train::estimator_statistics(m, theta, td.train, 32, 200, 0);
    out["estimator"] = {{"draws", es.draws},
                        {"batch", es.batch},
                        {"bias_vs_objective", es.bias_vs_objective},
                        {"bias_vs_soft", es.bias_vs_soft},
                        {"exact_vs_soft", es.exact_vs_soft},
                        {"cosine_vs_soft", es.cosine_vs_soft},
                        {"relative_std", es.relative_std}};
  } else {
    out["mi_bits"] = out["mi_soft_bits"];
    out["usage"] = out["usage_soft"];
  }
  return out;
}

// Trains (or resumes) one run and returns its result JSON.
json run_one(const Cell& cell, int seed, const json& common, const DataOptions& data_opts, const data::TaskData& td,
            const fs::path& dir, std::mutex& io) {
  const fs::path result_path = dir / "result.json";
  const model::ModelConfig mc = cell_model(cell, common, td.train.n_classes, td.train.n_features);
  train::TrainConfig tc = train::TrainConfig::from_json(common.at("train"));
  tc.seed = std::uint64_t(seed);
  // Per-task epochs (e.g. the 2-class tasks, with half the data, get twice the
  // epochs: the same number of optimiser steps).
  if (common.contains("epochs_by_task") && common["epochs_by_task"].contains(cell.task))
    tc.epochs = model::json_integer<int>(common["epochs_by_task"][cell.task], "epochs_by_task." + cell.task);
  tc.validate();
  // A finished run is reused, and a checkpoint resumed, only if it was made
  // with these settings (experiments/common.json may have changed since).
  const json config = {{"model", mc.to_json()}, {"train", tc.to_json()}, {"data", data_opts.to_json()}};
  if (fs::exists(result_path)) {
    json r = read_json(result_path);
    if (r.value("config", json()) == config) {
      r["reused"] = true;
      return r;
    }
  }
  make_directories(dir.string());
  const model::Model m = model::build_model(mc);
  const std::string ckpt = (dir / "checkpoint").string();
  train::Checkpoint ck{mc, tc, data_opts.to_json(), train::initial_state(m, tc)};
  if (fs::exists(ckpt)) {
    train::Checkpoint old = train::load_checkpoint(ckpt);
    if (old.model.to_json() == mc.to_json() && old.train.to_json() == tc.to_json() && old.task == ck.task)
      ck = std::move(old);
  }
  train::Callbacks cb;
  cb.on_epoch = [&](const train::TrainState& st, const train::EpochMetrics& e, bool) {
    ck.state = st;
    train::save_checkpoint(ckpt, ck);
    std::lock_guard<std::mutex> lk(io);  // progress between the cells' result lines
    std::fprintf(stderr, "  %s seed %d: epoch %d/%d, test accuracy %.2f%%, %.1f s\n", cell.name().c_str(), seed,
                 e.epoch, tc.epochs, train::to_percent(e.test_acc), e.seconds);
  };
  train::train(m, tc, td.train, td.test, ck.state, cb);
  Workspace<double> ws;
  const train::Evaluation ev = train::evaluate(m, ck.state.theta, td.test, ws);
  double seconds = 0;
  for (const auto& e : ck.state.history) seconds += e.seconds;
  train::write_file_atomic((dir / "metrics.csv").string(), train::metrics_csv(ck.state.history, false));
  json r = {{"test_accuracy_percent", train::to_percent(ev.accuracy)}, {"seconds", seconds}, {"params", m.n_params()},
            {"qubits", m.circuit.n_qubits}, {"epochs", tc.epochs}, {"depth", mc.depth},
            {"confusion", ev.confusion}, {"routing_by_class", ev.routing_by_class},
            {"class_names", td.test.class_names}, {"config", config}};
  if (!m.routing_qubits.empty()) r["routing"] = routing_summary(m, ck.state.theta, ev, td);
  train::write_file_atomic(result_path.string(), r.dump(1) + "\n");
  return r;
}

// A run's test accuracy in percent (result.json files written before issue 16 call it "test_acc").
double accuracy_percent(const json& result) {
  return result.contains("test_accuracy_percent") ? result["test_accuracy_percent"].get<double>()
                                                  : result.at("test_acc").get<double>();
}

std::string fmt(double v) {
  if (std::isnan(v)) return "–";
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

std::string fmt3(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3f", v);
  return b;
}

// results/specialisation.md: the study's table (per task and variant: test
// accuracy, I(class; expert), expert usage, parameters, the matched QNN) and
// the sampled-routing estimator's measurements. Text after the line
// "<!-- notes -->" in an existing file is kept (the written reading).
void write_specialisation_md(const fs::path& path, const json& table, const json& timing) {
  std::string notes;
  if (fs::exists(path)) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string old = ss.str();
    const auto at = old.find("<!-- notes -->");
    if (at != std::string::npos) notes = old.substr(at);
  }
  std::ostringstream o;
  o << "# Do quantum experts specialise? (issue 19)\n\n"
    << "Generated by `qmoe reproduce --table specialisation` (configs in `experiments/specialisation/`). "
    << "Test accuracy (%) after the last epoch, mean over seeds; I(class; expert) in bits (soft routing: p(c) * mean "
    << "p_k per class; sampled routing: the measured choices), out of log2 min(classes, experts) = 2 bits; expert "
    << "usage of seed 0 (share of each expert); parameter-matched QNN: same qubits and as many parameters.\n\n";
  o << "Run: " << timing["seeds"].get<int>() << " seed(s), " << timing["runs"].get<std::size_t>() << " runs ("
    << timing["runs_trained"].get<int>() << " trained, " << timing["runs_reused"].get<int>() << " reused), "
    << fmt(timing["wall_seconds"].get<double>()) << " s wall time with " << timing["jobs"].get<int>() << " jobs";
  const long tl = timing["train_limit"].get<long>(), xl = timing["test_limit"].get<long>();
  const int ep = timing["epochs_override"].get<int>();
  if (tl >= 0 || xl >= 0 || ep >= 0)
    o << "; REDUCED: " << (tl >= 0 ? "first " + std::to_string(tl) + " training samples, " : "")
      << (xl >= 0 ? "first " + std::to_string(xl) + " test samples, " : "")
      << (ep >= 0 ? std::to_string(ep) + " epochs" : "epochs from common.json");
  o << ".\n\n";
  std::map<std::pair<std::string, std::string>, const json*> by;
  std::vector<std::string> task_order;
  for (const json& r : table) {
    const std::string t = r["task"].get<std::string>();
    by[{t, r["variant"].get<std::string>()}] = &r;
    if (std::find(task_order.begin(), task_order.end(), t) == task_order.end()) task_order.push_back(t);
  }
  for (const std::string& t : task_order) {
    o << "## " << t << "\n\n| variant | test acc | I(class; expert) bits | usage (seed 0) | params | matched QNN | QNN params |\n"
      << "|---|---|---|---|---|---|---|\n";
    for (const json& r : table) {
      if (r["task"] != t || !r.contains("mi_mean")) continue;
      std::string usage;
      for (double u : r["routing"][0]["usage"]) usage += (usage.empty() ? "" : " / ") + fmt(u);
      const auto base = by.find({t, r["baseline"].get<std::string>()});
      const bool hb = base != by.end();
      o << "| " << r["variant"].get<std::string>() << " | " << fmt(r["mean_percent"].get<double>())
        << (r["accuracies_percent"].size() > 1 ? " ± " + fmt(r["std_percent"].get<double>()) : "") << " | "
        << fmt3(r["mi_mean"].get<double>()) << " | " << usage << " | " << r["params"].get<int>() << " | "
        << (hb ? fmt((*base->second)["mean_percent"].get<double>()) + " (" + r["baseline"].get<std::string>() + ")" : "–")
        << " | " << (hb ? std::to_string((*base->second)["params"].get<int>()) : "–") << " |\n";
    }
    o << "\n";
  }
  o << "## Sampled routing: the score-function estimator on one training batch (32 samples, 200 draws, seed 0)\n\n"
    << "| task | variant | bias vs E[hard loss] | exact hard vs soft gradient | cos(hard, soft) | one draw's relative std |\n"
    << "|---|---|---|---|---|---|\n";
  for (const json& r : table)
    if (r.contains("routing") && r["routing"][0].contains("estimator")) {
      const json& e = r["routing"][0]["estimator"];
      o << "| " << r["task"].get<std::string>() << " | " << r["variant"].get<std::string>() << " | "
        << fmt3(e["bias_vs_objective"].get<double>()) << " | " << fmt3(e["exact_vs_soft"].get<double>()) << " | "
        << fmt3(e["cosine_vs_soft"].get<double>()) << " | " << fmt3(e["relative_std"].get<double>()) << " |\n";
    }
  o << "\n";
  train::write_file_atomic(path.string(), o.str() + notes);
}

void run_reproduce(const Args& a) {
  const bool spec = a.table == "specialisation";
  const fs::path exp_dir = experiments_dir(a.experiments);
  const fs::path out_dir = a.out.empty() ? fs::absolute(exp_dir).parent_path() / "results" : fs::path(a.out);
  const fs::path table_dir = exp_dir / (spec ? a.table : "table" + a.table);
  // The study has its own common settings (experiments/specialisation/common.json).
  const fs::path common_path = spec ? table_dir / "common.json" : exp_dir / "common.json";
  json common = read_json(common_path);
  try {  // check the settings once, before any run, with the file named
    if (!common.is_object()) throw std::runtime_error("expected a JSON object");
    for (const char* key : {"model", "train"})
      if (!common.contains(key)) throw std::runtime_error(std::string("\"") + key + "\" is missing");
    model::ModelConfig::from_json(common.at("model"));
    train::TrainConfig::from_json(common.at("train"));
    const std::string scaling = field<std::string>(common, "scaling", common_path, "");
    if (!scaling.empty()) data::parse_scaling(scaling);
    field<long>(common, "train_limit", common_path, 0);
    field<long>(common, "test_limit", common_path, 0);
    const json epochs_by_task = field<json>(common, "epochs_by_task", common_path, json::object());
    for (const auto& [task, epochs] : epochs_by_task.items())  // items() of a named object: it must outlive the loop
      if (!epochs.is_number_integer() || epochs.get<long>() < 0 || epochs.get<long>() > 100000)
        throw std::runtime_error("\"epochs_by_task\": \"" + task + "\" must be an integer 0..100000");
  } catch (const std::exception& e) {
    const std::string what = e.what();
    throw std::runtime_error(what.rfind(common_path.string(), 0) == 0 ? what : common_path.string() + ": " + what);
  }
  if (a.epochs >= 0) {
    common["train"]["epochs"] = a.epochs;
    common.erase("epochs_by_task");
  }
  if (!fs::is_directory(table_dir)) throw std::runtime_error("no experiment configs in " + table_dir.string());
  std::vector<Cell> cells;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(table_dir))
    if (e.path().extension() == ".json" && e.path().filename() != "common.json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  // Every cell is checked before any run is trained.
  for (const auto& f : files) cells.push_back(read_cell(f, common, spec));
  if (cells.empty()) throw std::runtime_error("no experiment configs (*.json) in " + table_dir.string());
  std::vector<std::string> missing;
  if (!spec)  // the study has no paper cells
    for (const Cell& p : paper_cells(std::stoi(a.table))) {
      bool found = false;
      for (const Cell& c : cells) found = found || c.name() == p.name();
      if (!found) missing.push_back(p.name());
    }
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    std::fprintf(stderr, "reproduce: %s has no config for %zu of the paper's cells (left out): %s\n",
                 table_dir.c_str(), missing.size(), list.c_str());
  }
  // Load each task's data once (read-only afterwards).
  std::map<std::string, data::TaskData> tasks;
  std::map<std::string, DataOptions> task_opts;
  for (const Cell& c : cells) {
    if (tasks.count(c.task)) continue;
    DataOptions d;
    d.task = c.task;
    d.data_dir = a.data_dir;
    d.scaling = field<std::string>(common, "scaling", common_path, "");
    d.train_limit = a.train_limit >= 0 ? a.train_limit : field<long>(common, "train_limit", common_path, 0);
    d.test_limit = a.test_limit >= 0 ? a.test_limit : field<long>(common, "test_limit", common_path, 0);
    tasks.emplace(c.task, d.load());
    task_opts.emplace(c.task, d);
  }
  std::vector<std::pair<int, int>> jobs;  // (cell, seed)
  for (int ci = 0; ci < int(cells.size()); ++ci)
    for (int s = 0; s < a.seeds; ++s) jobs.push_back({ci, s});
  // Runs go out over the threads (--jobs) of every MPI rank, the next to
  // whichever is free (cli/mpi.hpp); a failed run is reported by name and the
  // others go on.
  const auto run_name = [&](int i) {
    return cells[std::size_t(jobs[std::size_t(i)].first)].name() + " seed " + std::to_string(jobs[std::size_t(i)].second);
  };
  const auto t0 = std::chrono::steady_clock::now();
  int done = 0;
  std::mutex io;  // stderr lines of runs going in parallel
  const int per_rank = mpi::size() > 1 && !a.jobs_given ? 1 : a.jobs;
  const std::vector<mpi::JobResult> outcomes = mpi::run_jobs(
      int(jobs.size()), per_rank,
      [&](int i) {
        const Cell& c = cells[std::size_t(jobs[std::size_t(i)].first)];
        const int seed = jobs[std::size_t(i)].second;
        return run_one(c, seed, common, task_opts.at(c.task), tasks.at(c.task),
                       out_dir / "runs" / (c.name() + "-s" + std::to_string(seed)), io)
            .dump();
      },
      [&](int i, const mpi::JobResult& r) {  // on rank 0, one at a time
        ++done;
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (!r.ok) {
          std::fprintf(stderr, "[%d/%zu] %s failed: %s (%.0f s elapsed)\n", done, jobs.size(), run_name(i).c_str(),
                       r.text.c_str(), secs);
          return;
        }
        const json j = json::parse(r.text);
        std::lock_guard<std::mutex> lk(io);
        std::fprintf(stderr, "[%d/%zu] %s: %.2f%%%s (%.0f s elapsed)\n", done, jobs.size(), run_name(i).c_str(),
                     accuracy_percent(j), j.value("reused", false) ? " (finished before: reused)" : "", secs);
      });
  std::vector<json> results(jobs.size());
  std::string first_error;
  int n_failed = 0;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (outcomes[i].ok) {
      results[i] = json::parse(outcomes[i].text);
    } else {
      if (first_error.empty()) first_error = run_name(int(i)) + ": " + outcomes[i].text;
      ++n_failed;
    }
  }
  if (n_failed > 1) first_error = std::to_string(n_failed) + " runs failed, the first " + first_error;
  if (!first_error.empty()) throw std::runtime_error(first_error);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  json table = json::array();
  for (int ci = 0; ci < int(cells.size()); ++ci) {
    const Cell& c = cells[std::size_t(ci)];
    std::vector<double> acc;
    double secs = 0;
    json first;
    for (std::size_t i = 0; i < jobs.size(); ++i)
      if (jobs[i].first == ci) {
        acc.push_back(accuracy_percent(results[i]));
        secs += results[i]["seconds"].get<double>();
        if (first.is_null()) first = results[i];
      }
    double mean = 0, var = 0;
    for (double v : acc) mean += v / double(acc.size());
    for (double v : acc) var += (v - mean) * (v - mean) / double(std::max<std::size_t>(1, acc.size() - 1));
    json row = {{"task", c.task}, {"model", c.model}, {"ops", c.ops}, {"experts", c.experts},
                {"accuracies_percent", acc}, {"mean_percent", train::to_percent(mean / 100)},
                {"std_percent", acc.size() > 1 ? train::to_percent(std::sqrt(var) / 100) : 0.0},
                {"params", first["params"]}, {"qubits", first["qubits"]}, {"epochs", first["epochs"]},
                {"seconds", secs},
                {"paper_percent", spec || std::isnan(paper_value(c)) ? json() : json(paper_value(c))}};
    if (spec) {
      row["variant"] = c.variant;
      row["baseline"] = c.baseline;
      row["config"] = first["config"];
      std::vector<double> mi;
      json routing = json::array();
      for (std::size_t i = 0; i < jobs.size(); ++i)
        if (jobs[i].first == ci && results[i].contains("routing")) {
          mi.push_back(results[i]["routing"]["mi_bits"].get<double>());
          routing.push_back(results[i]["routing"]);
        }
      if (!mi.empty()) {
        double m = 0;
        for (double v : mi) m += v / double(mi.size());
        row["mi_bits"] = mi;
        row["mi_mean"] = m;
        row["routing"] = routing;  // per seed: usage, entropy, choices, estimator
        row["routing_by_class"] = first["routing_by_class"];  // seed 0's heat map
      }
    }
    table.push_back(row);
  }
  const bool writer = mpi::rank() == 0;  // every rank has every result; rank 0 writes
  const std::string stem = spec ? a.table : "table" + a.table;
  const fs::path table_path = out_dir / (stem + ".json");
  if (writer) make_directories(out_dir.string());
  if (writer) train::write_file_atomic(table_path.string(), table.dump(1) + "\n");
  int reused = 0;
  for (const json& r : results) reused += r.value("reused", false) ? 1 : 0;
  const json table_id = spec ? json(a.table) : json(std::stoi(a.table));
  json timing = {{"table", table_id}, {"seeds", a.seeds}, {"runs", jobs.size()},
                 {"runs_trained", int(jobs.size()) - reused}, {"runs_reused", reused}, {"wall_seconds", wall},
                 {"jobs", per_rank}, {"ranks", mpi::size()}, {"missing_cells", missing},
                 {"train_limit", a.train_limit}, {"test_limit", a.test_limit}, {"epochs_override", a.epochs}};
  if (writer) {
    train::write_file_atomic((out_dir / (stem + "-timing.json")).string(), timing.dump(1) + "\n");
    if (spec) write_specialisation_md(out_dir / "specialisation.md", table, timing);
  }
  if (!writer) return;
  if (a.json) {  // one line: the table, where it was written, the run counts
    const json out = {{"table", table_id}, {"file", table_path.string()}, {"timing", timing}, {"cells", table}};
    std::printf("%s\n", out.dump().c_str());
    return;
  }
  std::printf("%s: %zu cells x %d seeds in %.0f s; wrote %s\n", stem.c_str(), cells.size(), a.seeds, wall,
              table_path.c_str());
  for (const auto& r : table)
    if (spec)
      std::printf("  %-9s %-22s %6s  I(class; expert) %s bits\n", r["task"].get<std::string>().c_str(),
                  r["variant"].get<std::string>().c_str(), fmt(r["mean_percent"].get<double>()).c_str(),
                  r.contains("mi_mean") ? fmt3(r["mi_mean"].get<double>()).c_str() : "–");
    else
      std::printf("  %-9s %-12s %-7s L=%d  %6s +- %5s  (paper %s)\n", r["task"].get<std::string>().c_str(),
                  r["model"].get<std::string>().c_str(), r["ops"].get<std::string>().c_str(), r["experts"].get<int>(),
                  fmt(r["mean_percent"].get<double>()).c_str(), fmt(r["std_percent"].get<double>()).c_str(),
                  r["paper_percent"].is_null() ? "–" : fmt(r["paper_percent"].get<double>()).c_str());
}

}  // namespace

void add_reproduce_command(CLI::App& app) {
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "reproduce", "train every cell of the paper's Table I or II, or of the specialisation study, and write results/");
  cmd->add_option("--table", a->table,
                  "1 (methods x operators x tasks), 2 (experts ablation) or specialisation (routing variants, issue 19)")
      ->required()
      ->check(CLI::IsMember({"1", "2", "specialisation"}));
  cmd->add_option("--seeds", a->seeds, "seeds per cell")->check(CLI::Range(1, 100));
  cmd->add_option("--out", a->out, "results directory")->default_str("results/ beside the experiments directory");
  cmd->add_option("--experiments", a->experiments,
                  "experiment configs (common.json, table1/, table2/, specialisation/ with its own common.json)")
      ->default_str("./experiments, else the source tree's");
  cmd->add_option("--data-dir", a->data_dir, "data directory");
  cmd->add_option("--jobs", a->jobs, "runs in parallel (under mpirun: per rank, default 1)")->check(CLI::Range(1, 64));
  cmd->add_flag("--json", a->json, "print the table as one JSON line instead of text");
  cmd->add_option("--epochs", a->epochs, "override the epochs of experiments/common.json")
      ->check(CLI::Range(0, 10000))
      ->default_str("common.json's");
  cmd->add_option("--train-limit", a->train_limit, "use only the first N training samples (smoke tests)")
      ->check(CLI::NonNegativeNumber)
      ->default_str("common.json's, else all");
  cmd->add_option("--test-limit", a->test_limit, "use only the first N test samples")
      ->check(CLI::NonNegativeNumber)
      ->default_str("common.json's, else all");
  cmd->callback([a, cmd] {
    a->jobs_given = cmd->count("--jobs") > 0;
    run_reproduce(*a);
  });
}

}  // namespace qmoe::cli
