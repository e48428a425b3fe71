// qmoe reproduce --table 1|2: trains every cell of the paper's Table I or II
// (configs in experiments/), several seeds each, and writes
// results/table{1,2}.json and results/README.md (our table beside the paper's).
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

namespace qmoe::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Args {
  int table = 1;
  int seeds = 3;
  std::string out = "results";
  std::string experiments = "experiments";
  std::string data_dir;
  int jobs = 2;
  bool jobs_given = false;  // under mpirun the default is 1 run at a time per rank
  int epochs = -1;        // override experiments/common.json
  long train_limit = -1;  // override (smoke tests)
  long test_limit = -1;
};

struct Cell {
  std::string task, model, ops;
  int experts = 4;
  std::string name() const { return task + "-" + model + "-" + ops + "-L" + std::to_string(experts); }
};

json read_json(const fs::path& p) {
  std::ifstream f(p);
  if (!f) throw std::runtime_error("cannot open " + p.string());
  json j = json::parse(f, nullptr, false);
  if (j.is_discarded()) throw std::runtime_error(p.string() + " is not valid JSON");
  return j;
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

// Trains (or resumes) one run and returns its result JSON.
json run_one(const Cell& cell, int seed, const json& common, const DataOptions& data_opts, const data::TaskData& td,
            const fs::path& dir) {
  const fs::path result_path = dir / "result.json";
  model::ModelConfig mc = model::ModelConfig::from_json(common.at("model"));
  mc.ops = cell.ops;
  mc.experts = cell.experts;
  mc.n_classes = td.train.n_classes;
  mc.n_features = td.train.n_features;
  mc = resolve_model(mc, cell.model);
  train::TrainConfig tc = train::TrainConfig::from_json(common.at("train"));
  tc.seed = std::uint64_t(seed);
  // Per-task epochs (e.g. the 2-class tasks, with half the data, get twice the
  // epochs: the same number of optimiser steps).
  if (common.contains("epochs_by_task") && common["epochs_by_task"].contains(cell.task))
    tc.epochs = json_integer<int>(common["epochs_by_task"][cell.task], "epochs_by_task." + cell.task);
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
  fs::create_directories(dir);
  const model::Model m = model::build_model(mc);
  const std::string ckpt = (dir / "checkpoint").string();
  train::Checkpoint ck{mc, tc, data_opts.to_json(), train::initial_state(m, tc)};
  if (fs::exists(ckpt)) {
    train::Checkpoint old = train::load_checkpoint(ckpt);
    if (old.model.to_json() == mc.to_json() && old.train.to_json() == tc.to_json() && old.task == ck.task)
      ck = std::move(old);
  }
  train::Callbacks cb;
  cb.on_epoch = [&](const train::TrainState& st, const train::EpochMetrics&, bool) {
    ck.state = st;
    train::save_checkpoint(ckpt, ck);
  };
  train::train(m, tc, td.train, td.test, ck.state, cb);
  Workspace<double> ws;
  const train::Evaluation ev = train::evaluate(m, ck.state.theta, td.test, ws);
  double seconds = 0;
  for (const auto& e : ck.state.history) seconds += e.seconds;
  train::write_file_atomic((dir / "metrics.csv").string(), train::metrics_csv(ck.state.history, false));
  json r = {{"test_acc", 100 * ev.accuracy}, {"seconds", seconds}, {"params", m.n_params()},
            {"qubits", m.circuit.n_qubits}, {"epochs", tc.epochs}, {"depth", mc.depth},
            {"confusion", ev.confusion}, {"routing_by_class", ev.routing_by_class},
            {"class_names", td.test.class_names}, {"config", config}};
  train::write_file_atomic(result_path.string(), r.dump(1) + "\n");
  return r;
}

std::string fmt(double v) {
  if (std::isnan(v)) return "–";
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

void run_reproduce(const Args& a) {
  const fs::path exp_dir = fs::path(a.experiments);
  json common = read_json(exp_dir / "common.json");
  try {  // check the settings once, before any run, with the file named
    model::ModelConfig::from_json(common.at("model"));
    train::TrainConfig::from_json(common.at("train"));
  } catch (const std::exception& e) {
    std::string what = e.what();  // may hold "[json.exception.out_of_range.403] key 'lr' not found"
    const auto open = what.find("[json.exception"), close = what.find("] ", open);
    if (open != std::string::npos && close != std::string::npos) what.erase(open, close + 2 - open);
    throw std::runtime_error((exp_dir / "common.json").string() + ": " + what);
  }
  if (a.epochs >= 0) {
    common["train"]["epochs"] = a.epochs;
    common.erase("epochs_by_task");
  }
  const fs::path table_dir = exp_dir / ("table" + std::to_string(a.table));
  if (!fs::is_directory(table_dir)) throw std::runtime_error("no experiment configs in " + table_dir.string());
  std::vector<Cell> cells;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(table_dir))
    if (e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    const json j = read_json(f);
    Cell c;
    for (const auto& [key, value] : j.items())
      if (key != "task" && key != "model" && key != "ops" && key != "experts")
        throw std::runtime_error(f.string() + ": unknown key \"" + key + "\" (a cell has task, model, ops, experts)");
    try {
      c.task = j.at("task").get<std::string>();
      c.model = j.at("model").get<std::string>();
      c.ops = j.at("ops").get<std::string>();
      if (j.contains("experts")) c.experts = json_integer<int>(j["experts"], "experts");
    } catch (const json::exception& e) {
      throw std::runtime_error(f.string() + ": " + e.what());
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(f.string() + ": " + e.what());
    }
    cells.push_back(c);
  }
  // Load each task's data once (read-only afterwards).
  std::map<std::string, data::TaskData> tasks;
  std::map<std::string, DataOptions> task_opts;
  for (const Cell& c : cells) {
    if (tasks.count(c.task)) continue;
    DataOptions d;
    d.task = c.task;
    d.data_dir = a.data_dir;
    d.scaling = common.value("scaling", std::string("tq"));
    d.train_limit = a.train_limit >= 0 ? a.train_limit : common.value("train_limit", 0L);
    d.test_limit = a.test_limit >= 0 ? a.test_limit : common.value("test_limit", 0L);
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
  const int per_rank = mpi::size() > 1 && !a.jobs_given ? 1 : a.jobs;
  const std::vector<mpi::JobResult> outcomes = mpi::run_jobs(
      int(jobs.size()), per_rank,
      [&](int i) {
        const Cell& c = cells[std::size_t(jobs[std::size_t(i)].first)];
        const int seed = jobs[std::size_t(i)].second;
        return run_one(c, seed, common, task_opts.at(c.task), tasks.at(c.task),
                       fs::path(a.out) / "runs" / (c.name() + "-s" + std::to_string(seed)))
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
        std::fprintf(stderr, "[%d/%zu] %s: %.2f%%%s (%.0f s elapsed)\n", done, jobs.size(), run_name(i).c_str(),
                     j["test_acc"].get<double>(), j.value("reused", false) ? " (finished before: reused)" : "", secs);
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
        acc.push_back(results[i]["test_acc"].get<double>());
        secs += results[i]["seconds"].get<double>();
        if (first.is_null()) first = results[i];
      }
    double mean = 0, var = 0;
    for (double v : acc) mean += v / double(acc.size());
    for (double v : acc) var += (v - mean) * (v - mean) / double(std::max<std::size_t>(1, acc.size() - 1));
    table.push_back({{"task", c.task}, {"model", c.model}, {"ops", c.ops}, {"experts", c.experts},
                     {"accuracies", acc}, {"mean", mean}, {"std", acc.size() > 1 ? std::sqrt(var) : 0.0},
                     {"params", first["params"]}, {"qubits", first["qubits"]}, {"epochs", first["epochs"]},
                     {"seconds", secs}, {"paper", std::isnan(paper_value(c)) ? json() : json(paper_value(c))}});
  }
  const bool writer = mpi::rank() == 0;  // every rank has every result; rank 0 writes
  if (writer) fs::create_directories(a.out);
  if (writer)
    train::write_file_atomic((fs::path(a.out) / ("table" + std::to_string(a.table) + ".json")).string(),
                             table.dump(1) + "\n");
  int reused = 0;
  for (const json& r : results) reused += r.value("reused", false) ? 1 : 0;
  json timing = {{"table", a.table}, {"seeds", a.seeds}, {"runs", jobs.size()}, {"runs_trained", int(jobs.size()) - reused},
                 {"runs_reused", reused}, {"wall_seconds", wall}, {"jobs", per_rank}, {"ranks", mpi::size()}};
  if (writer)
    train::write_file_atomic((fs::path(a.out) / ("table" + std::to_string(a.table) + "-timing.json")).string(),
                           timing.dump(1) + "\n");
  std::printf("table %d: %zu cells x %d seeds in %.0f s; wrote %s\n", a.table, cells.size(), a.seeds, wall,
              (fs::path(a.out) / ("table" + std::to_string(a.table) + ".json")).c_str());
  for (const auto& r : table)
    std::printf("  %-9s %-12s %-7s L=%d  %6s +- %5s  (paper %s)\n", r["task"].get<std::string>().c_str(),
                r["model"].get<std::string>().c_str(), r["ops"].get<std::string>().c_str(), r["experts"].get<int>(),
                fmt(r["mean"].get<double>()).c_str(), fmt(r["std"].get<double>()).c_str(),
                r["paper"].is_null() ? "–" : fmt(r["paper"].get<double>()).c_str());
}

}  // namespace

void add_reproduce_command(CLI::App& app) {
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("reproduce", "train every cell of the paper's Table I or II and write results/");
  cmd->add_option("--table", a->table, "1 (methods x operators x tasks) or 2 (experts ablation)")
      ->required()
      ->check(CLI::IsMember({1, 2}));
  cmd->add_option("--seeds", a->seeds, "seeds per cell (default 3)")->check(CLI::Range(1, 100));
  cmd->add_option("--out", a->out, "results directory (default results)");
  cmd->add_option("--experiments", a->experiments, "experiment configs (default experiments)");
  cmd->add_option("--data-dir", a->data_dir, "data directory");
  cmd->add_option("--jobs", a->jobs, "runs in parallel (default 2; under mpirun: per rank, default 1)")->check(CLI::Range(1, 64));
  cmd->add_option("--epochs", a->epochs, "override the epochs of experiments/common.json")->check(CLI::Range(0, 10000));
  cmd->add_option("--train-limit", a->train_limit, "use only the first N training samples (smoke tests)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--test-limit", a->test_limit, "use only the first N test samples")->check(CLI::NonNegativeNumber);
  cmd->callback([a, cmd] {
    a->jobs_given = cmd->count("--jobs") > 0;
    run_reproduce(*a);
  });
}

}  // namespace qmoe::cli
