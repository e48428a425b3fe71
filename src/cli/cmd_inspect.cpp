// qmoe eval / predict / export: look inside a trained checkpoint.
//
//   qmoe eval    --checkpoint F [--task T] [--json]            accuracy, confusion, routing per class
//   qmoe predict --checkpoint F [--task T] --index I [--json]  one sample: probabilities, <Z_q>, routing
//   qmoe export  --checkpoint F [--task T] --index I --qasm OUT  the circuit for that sample, OpenQASM 2.0
//
// The data defaults to the checkpoint's own task, scaling and test limit (so
// `eval` reproduces the test accuracy printed by `train`); --task picks
// another task with the same class count, --test-limit changes the limit
// (0: the whole split). Samples are numbered 0.. within the selected split.
// Every error is one "qmoe: error: ..." line (see main.cpp); no output file is
// left behind on failure. See docs/cli.md.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "circuit/qasm.hpp"
#include "cli/cli.hpp"
#include "cli/train_common.hpp"

namespace qmoe::cli {
namespace {

using ojson = nlohmann::ordered_json;

struct InspectArgs {
  std::string checkpoint;
  std::string task;       // empty: the checkpoint's
  std::string data_dir;
  long limit = -1;        // -1: the checkpoint's
  std::string split = "test";
  bool json = false;
  long index = -1;
  std::string qasm_out;
  int threads = 0;
  NoiseOptions noise;  // eval / predict: simulated hardware noise
};

// The evaluation noise the options ask for, or null (exact simulation).
const train::EvalNoise* eval_noise(const InspectArgs& a, train::EvalNoise& storage) {
  a.noise.check();
  if (!a.noise.active()) return nullptr;
  storage.model = a.noise.model;
  storage.trajectories = a.noise.n_trajectories();
  storage.seed = a.noise.seed;
  return &storage;
}

ojson noise_json(const InspectArgs& a) { return ojson::parse(a.noise.to_json().dump()); }

std::string noise_line(const InspectArgs& a) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "noise: depol1 %g, depol2 %g, readout error %g; mean of %d trajectories (seed %llu)\n",
                a.noise.model.p1, a.noise.model.p2, a.noise.model.readout, a.noise.n_trajectories(),
                static_cast<unsigned long long>(a.noise.seed));
  return buf;
}

// A checkpoint with its model and the selected data split.
struct Loaded {
  std::string path;
  train::Checkpoint ck;
  model::Model model;
  DataOptions data;
  data::TaskData td;
  const data::Dataset* set = nullptr;
};

Loaded load(const InspectArgs& a) {
  namespace fs = std::filesystem;
  Loaded l;
  l.path = a.checkpoint;
  std::error_code ec;
  if (fs::is_directory(l.path, ec)) l.path = (fs::path(l.path) / "checkpoint").string();
  if (!fs::exists(l.path, ec)) throw std::runtime_error("checkpoint " + l.path + " does not exist");
  l.ck = train::load_checkpoint(l.path);
  l.model = model::build_model(l.ck.model);

  l.data = DataOptions::from_json(l.ck.task);
  // The split's sample limit: the checkpoint's for its own task, else all.
  const bool own_task = a.task.empty() || a.task == l.data.task;
  const double val = own_task ? l.ck.task.value("val", 0.0) : 0.0;
  if (a.split == "val" && !(val > 0))
    throw std::runtime_error("--split val needs a checkpoint trained with --val on the same task (" + l.path +
                             " has no validation split)");
  long limit = a.split == "test" ? l.data.test_limit : l.data.train_limit;
  if (!own_task) {
    l.data.task = a.task;
    if (l.data.is_csv()) l.data.scaling.clear();  // a CSV task's features are used as given
    limit = 0;
  }
  if (a.limit >= 0) limit = a.limit;
  l.data.data_dir = a.data_dir;
  if (!own_task || a.split != "test") l.data.test_csv.clear();  // only its own test split reads it
  // Only the selected split is needed: keep the other one tiny. The
  // validation split is cut from the training data exactly as `train --val`
  // did (same limit, fraction and seed); --limit then keeps its first N.
  l.data.test_limit = a.split == "test" ? limit : 1;
  if (a.split == "train") l.data.train_limit = limit;
  if (a.split == "test") l.data.train_limit = 1;
  l.td = l.data.load();
  if (a.split == "val") {
    data::Split sp = data::split_validation(l.td.train, val, l.ck.train.seed);
    l.td.train = std::move(sp.second);
    if (a.limit > 0 && l.td.train.size() > std::size_t(a.limit)) {
      std::vector<std::size_t> rows(std::size_t(a.limit));
      for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = i;
      l.td.train = data::subset(l.td.train, rows);
    }
  }
  l.set = a.split == "test" ? &l.td.test : &l.td.train;
  const data::Dataset& d = *l.set;
  const int C = l.model.n_classes();
  if (d.n_classes != C)
    throw std::runtime_error("task " + l.data.task + " has " + std::to_string(d.n_classes) + " classes, but the model in " +
                             l.path + " has " + std::to_string(C));
  if (d.n_features != l.model.config.n_features)
    throw std::runtime_error("task " + l.data.task + " has " + std::to_string(d.n_features) +
                             " features, but the model in " + l.path + " expects " +
                             std::to_string(l.model.config.n_features));
  if (d.size() == 0)
    throw std::runtime_error("task " + l.data.task + " has no " + a.split + " samples" +
                             (a.split == "test" ? " (try --split train)" : ""));
  return l;
}

std::string class_name(const data::Dataset& d, int c) {
  return c >= 0 && std::size_t(c) < d.class_names.size() ? d.class_names[std::size_t(c)] : std::to_string(c);
}

ojson task_json(const Loaded& l, const InspectArgs& a) {
  ojson t;
  t["task"] = l.data.task;
  t["split"] = a.split;
  t["scaling"] = l.data.scaling_name();
  t["limit"] = a.split == "test" ? l.data.test_limit : a.split == "train" ? l.data.train_limit : std::max(a.limit, 0L);  // 0: all
  if (a.split == "val") t["val"] = l.ck.task.value("val", 0.0);
  t["description"] = l.td.description;
  return t;
}

int experts(const model::Model& m) { return m.routing_qubits.empty() ? 0 : m.config.experts; }

std::size_t check_index(const Loaded& l, const InspectArgs& a) {
  const std::size_t n = l.set->size();
  if (a.index < 0 || std::size_t(a.index) >= n)
    throw std::runtime_error("index " + std::to_string(a.index) + " out of range: the " + a.split + " split of " +
                             l.data.task + " has " + std::to_string(n) + " samples (0.." + std::to_string(n - 1) +
                             ")");
  return std::size_t(a.index);
}

// Writes text to path via a temporary file in the same directory and a
// rename; on any failure the temporary file is removed and path is untouched.
void write_output(const std::string& path, const std::string& text) {
  if (path == "-") {
    std::cout << text << std::flush;
    return;
  }
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write " + path + " (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write " + path + ": " + err);
  }
}

// ---- eval --------------------------------------------------------------------

void run_eval(const InspectArgs& a) {
  set_threads(a.threads);
  train::EvalNoise noise;
  const train::EvalNoise* np = eval_noise(a, noise);
  const Loaded l = load(a);
  const data::Dataset& d = *l.set;
  Workspace<double> ws;
  const train::Evaluation e = train::evaluate(l.model, l.ck.state.theta, d, ws, np);
  const int C = l.model.n_classes(), L = experts(l.model);
  const std::vector<std::size_t> counts = d.class_counts();

  if (a.json) {
    ojson o;
    o["checkpoint"] = l.path;
    o["epoch"] = l.ck.state.epoch;
    o["task"] = task_json(l, a);
    o["samples"] = d.size();
    if (np) o["noise"] = noise_json(a);
    o["accuracy"] = e.accuracy;
    o["loss"] = e.loss;
    o["class_names"] = d.class_names;
    o["counts"] = counts;
    o["confusion"] = e.confusion;
    std::vector<double> per_class(std::size_t(C), 0.0);
    for (int c = 0; c < C; ++c)
      if (counts[std::size_t(c)]) per_class[std::size_t(c)] = double(e.confusion[c][c]) / double(counts[c]);
    o["class_accuracy"] = per_class;
    if (L > 0) o["routing_by_class"] = e.routing_by_class;
    o["model"] = ojson::parse(l.ck.model.to_json().dump());
    o["params"] = l.model.n_params();
    o["qubits"] = l.model.circuit.n_qubits;
    o["experts"] = L;
    std::cout << o.dump() << std::endl;
    return;
  }

  std::printf("%s (%s, %d qubits, %d parameters), epoch %d of %s\n", model::to_string(l.ck.model.model), l.ck.model.ops.c_str(),
              l.model.circuit.n_qubits, l.model.n_params(), l.ck.state.epoch, l.path.c_str());
  const std::string source = a.split == "test" && !l.data.test_csv.empty() ? l.data.test_csv : l.data.task;
  std::printf("%s: %s split, %zu samples\n", source.c_str(), a.split.c_str(), d.size());
  if (np) std::fputs(noise_line(a).c_str(), stdout);
  std::printf("accuracy: %.2f%%   loss: %.4f\n\n", 100 * e.accuracy, e.loss);
  std::size_t w = 5;
  for (int c = 0; c < C; ++c) w = std::max(w, class_name(d, c).size());
  const int iw = int(w);
  std::printf("confusion (rows: true class, columns: predicted class)\n%-*s", iw, "true");
  for (int c = 0; c < C; ++c) std::printf(" %7s", class_name(d, c).c_str());
  std::printf(" %7s %8s\n", "count", "acc");
  for (int c = 0; c < C; ++c) {
    std::printf("%-*s", iw, class_name(d, c).c_str());
    for (int p = 0; p < C; ++p) std::printf(" %7d", e.confusion[c][p]);
    const double acc = counts[c] ? double(e.confusion[c][c]) / double(counts[c]) : 0.0;
    std::printf(" %7zu %7.2f%%\n", counts[c], 100 * acc);
  }
  if (L > 0) {
    std::printf("\nmean routing probability p_k per true class\n%-*s", iw, "class");
    for (int k = 0; k < L; ++k) std::printf("  %8s", ("expert" + std::to_string(k)).c_str());
    std::printf("\n");
    for (int c = 0; c < C; ++c) {
      std::printf("%-*s", iw, class_name(d, c).c_str());
      for (int k = 0; k < L; ++k) std::printf("  %8.4f", e.routing_by_class[c][k]);
      std::printf("\n");
    }
  }
}

// ---- predict -------------------------------------------------------------------

void run_predict(const InspectArgs& a) {
  set_threads(a.threads);
  const Loaded l = load(a);
  const std::size_t i = check_index(l, a);
  const data::Dataset one = data::subset(*l.set, {i});
  Workspace<double> ws;
  train::EvalNoise noise;
  const train::Evaluation e = train::evaluate(l.model, l.ck.state.theta, one, ws, eval_noise(a, noise));
  const int C = l.model.n_classes(), L = experts(l.model), n = l.model.n_data_observables;
  const std::vector<double> probs(e.probabilities.begin(), e.probabilities.begin() + C);
  const std::vector<double> z(e.expvals.begin(), e.expvals.begin() + n);
  const std::vector<double> route(e.routing.begin(), e.routing.begin() + L);
  const int label = one.y[0], pred = e.predictions[0];

  if (a.json) {
    ojson o;
    o["checkpoint"] = l.path;
    o["task"] = task_json(l, a);
    o["index"] = i;
    if (!one.source_index.empty()) o["source_index"] = one.source_index[0];
    o["label"] = label;
    o["label_name"] = class_name(one, label);
    o["predicted"] = pred;
    o["predicted_name"] = class_name(one, pred);
    o["correct"] = label == pred;
    if (a.noise.active()) o["noise"] = noise_json(a);
    o["class_names"] = one.class_names;
    o["probabilities"] = probs;
    o["expval_z"] = z;
    o["data_qubits"] = l.model.data_qubits;
    if (L > 0) {
      o["routing"] = route;
      o["routing_qubits"] = l.model.routing_qubits.size();
    }
    std::cout << o.dump() << std::endl;
    return;
  }
  std::printf("%s sample %zu (%s split)", l.data.task.c_str(), i, a.split.c_str());
  if (!one.source_index.empty()) std::printf(", row %lld of its file", (long long)one.source_index[0]);
  std::printf("\nlabel: %s   predicted: %s (%s)\n", class_name(one, label).c_str(), class_name(one, pred).c_str(),
              label == pred ? "correct" : "wrong");
  if (a.noise.active()) std::fputs(noise_line(a).c_str(), stdout);
  std::printf("class probabilities:");
  for (int c = 0; c < C; ++c) std::printf("  %s %.4f", class_name(one, c).c_str(), probs[c]);
  std::printf("\n<Z> of the data qubits:");
  for (int q = 0; q < n; ++q) std::printf(" %+.4f", z[q]);
  std::printf("\n");
  if (L > 0) {
    std::printf("routing probabilities:");
    for (int k = 0; k < L; ++k) std::printf("  expert%d %.4f", k, route[k]);
    std::printf("\n");
  }
}

// ---- export --------------------------------------------------------------------

void run_export(const InspectArgs& a) {
  const Loaded l = load(a);
  const std::size_t i = check_index(l, a);
  const std::vector<double> x = model::circuit_inputs(l.model, l.set->row(i), 1);
  const model::Model& m = l.model;
  const int r = int(m.routing_qubits.size()), n = int(m.data_qubits.size());
  std::ostringstream c;
  c << "qmoe export: " << model::to_string(l.ck.model.model) << " (" << l.ck.model.ops << ") from " << l.path << ", epoch "
    << l.ck.state.epoch << "\n"
    << l.data.task << " " << a.split << " sample " << i << ", label " << class_name(*l.set, l.set->y[i]) << "\n";
  if (r > 0)
    c << "qubits: q[0.." << n - 1 << "] data register, q[" << n << ".." << n + r - 1 << "] routing register ("
      << m.config.experts << " experts, q[" << n << "] the expert index's high bit)\n";
  else
    c << "qubits: q[0.." << n - 1 << "] data register\n";
  c << "class logits are a linear read-out of <Z> on the data qubits (see docs/models.md)";
  QasmWriteOptions opt;
  opt.comment = c.str();
  write_output(a.qasm_out, write_qasm(m.circuit, l.ck.state.theta, x.data(), opt));
  if (a.qasm_out != "-")
    std::fprintf(stderr, "wrote %s: %d qubits, %zu model gates\n", a.qasm_out.c_str(), m.circuit.n_qubits,
                 m.circuit.gates.size());
}

void add_common(CLI::App* cmd, InspectArgs& a) {
  cmd->add_option("--checkpoint", a.checkpoint, "checkpoint file (or a train --out directory)")->required();
  cmd->add_option("--task", a.task, "task (default: the checkpoint's): " + data::task_list() + ", or a CSV file");
  cmd->add_option("--data-dir", a.data_dir, "data directory (default $QMOE_DATA_DIR or ~/.local/share/qmoe)");
  cmd->add_option("--test-limit,--limit", a.limit,
                  "use only the first N samples of the split (default: the checkpoint's limit; 0: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--split", a.split, "test (default), train, or val (the validation part of a train --val run)")
      ->check(CLI::IsMember({"test", "train", "val"}));
}

}  // namespace

void add_inspect_commands(CLI::App& app) {
  {
    auto a = std::make_shared<InspectArgs>();
    CLI::App* cmd = app.add_subcommand("eval", "accuracy, confusion matrix and routing per class of a checkpoint");
    add_common(cmd, *a);
    cmd->add_flag("--json", a->json, "print everything as JSON");
    cmd->add_option("--threads", a->threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
    a->noise.add(*cmd, true);
    cmd->callback([a] { run_eval(*a); });
  }
  {
    auto a = std::make_shared<InspectArgs>();
    CLI::App* cmd = app.add_subcommand("predict", "class probabilities, <Z> and routing of one sample");
    add_common(cmd, *a);
    cmd->add_option("--index", a->index, "sample number in the split (0-based)")->required();
    cmd->add_flag("--json", a->json, "print as one JSON line");
    a->noise.add(*cmd, true);
    cmd->callback([a] { run_predict(*a); });
  }
  {
    auto a = std::make_shared<InspectArgs>();
    CLI::App* cmd = app.add_subcommand("export", "the model's circuit for one sample as OpenQASM 2.0");
    add_common(cmd, *a);
    cmd->add_option("--index", a->index, "sample number in the split (0-based)")->required();
    cmd->add_option("--qasm", a->qasm_out, "output file ('-': stdout)")->required();
    cmd->callback([a] { run_export(*a); });
  }
}

}  // namespace qmoe::cli
