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

#include <bit>
#include <cerrno>
#include <cmath>
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

#include "circuit/cost.hpp"
#include "circuit/qasm.hpp"
#include "grad/shots.hpp"
#include "model/routed.hpp"
#include "train/checkpoint.hpp"
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
  std::string input;          // predict: an unlabelled CSV of features
  std::string output = "-";   // predict --input: where the predictions CSV goes
  std::string csv_header = "auto";
  int threads = 0;
  NoiseOptions noise;  // eval / predict: simulated hardware noise
  std::string execution = "coherent";  // eval / predict: coherent | routed (model/routed.hpp)
  long shots = 0;                      // eval / predict: estimate from N shots per sample (0: exact)
  bool routed_export = false;          // export --routed
};

// The evaluation noise the options ask for, or null (exact simulation).
const train::EvalNoise* eval_noise(const InspectArgs& a, train::EvalNoise& storage) {
  if (a.shots > 0 && a.noise.active())
    throw std::runtime_error("--shots with noise is not simulated: give either --shots or the noise options");
  if (a.shots == 0) a.noise.check();
  else if (a.noise.trajectories > 0) throw std::runtime_error("--trajectories needs noise: give --depol1, --depol2 or --readout-error");
  if (!a.noise.active()) return nullptr;
  storage.model = a.noise.model;
  storage.trajectories = a.noise.n_trajectories();
  storage.seed = a.noise.seed;
  return &storage;
}

ojson noise_json(const InspectArgs& a) { return ojson::parse(a.noise.to_json().dump()); }

std::string noise_line(const InspectArgs& a) {
  const NoiseModel& m = a.noise.model;
  char buf[400];
  int len = std::snprintf(buf, sizeof buf, "noise: depol1 %g, depol2 %g, amp damping %g, phase damping %g, readout error ",
                          m.p1, m.p2, m.amp_damping, m.phase_damping);
  if (m.flip01() == m.flip10()) len += std::snprintf(buf + len, sizeof buf - len, "%g", m.flip01());
  else len += std::snprintf(buf + len, sizeof buf - len, "0->1 %g, 1->0 %g", m.flip01(), m.flip10());
  if (a.noise.density())
    std::snprintf(buf + len, sizeof buf - len, "; exact density matrix\n");
  else
    std::snprintf(buf + len, sizeof buf - len, "; mean of %d trajectories (seed %llu)\n", a.noise.n_trajectories(),
                  static_cast<unsigned long long>(a.noise.seed));
  return buf;
}

// How eval / predict get the model's expectations: null for evaluate()'s own
// coherent exact or noisy path; else routed execution (exact, noisy
// trajectories piece by piece, or shots) or coherent shot estimates.
std::unique_ptr<train::BatchExpectations> make_runner(const InspectArgs& a, const model::Model& m,
                                                      const std::vector<double>& theta) {
  if (a.execution == "coherent") {
    if (a.noise.active() && a.noise.density()) {
      const NoiseModel* noise = &a.noise.model;
      return std::make_unique<train::BatchExpectations>([&m, &theta, noise](const double* x, int B, double* ev) {
        density_forward(m.circuit, theta, x, B, m.observables, *noise, ev);
      });
    }
    if (a.shots == 0) return nullptr;
    const long shots = a.shots;
    const std::uint64_t seed = a.noise.seed;
    return std::make_unique<train::BatchExpectations>([&m, &theta, shots, seed](const double* x, int B, double* ev) {
      shot_forward<double>(m.circuit, theta, x, B, m.observables, shots, seed, ev);
    });
  }
  if (m.routing_qubits.empty())
    throw std::runtime_error("--execution routed needs a QMoE checkpoint (this model is a " + std::string(model::to_string(m.config.model)) + ")");
  auto rm = std::make_shared<const model::RoutedModel>(model::split_routed(m));
  if (rm->entangled && a.noise.active())
    throw std::runtime_error("--execution routed with the joint routing encoder runs exactly or with --shots only "
                             "(its registers are entangled before the routing measurement; see docs/models.md)");
  const long shots = a.shots;
  const std::uint64_t seed = a.noise.seed;
  if (shots > 0)
    return std::make_unique<train::BatchExpectations>([rm, &m, &theta, shots, seed](const double* x, int B, double* ev) {
      model::routed_shots(*rm, m, theta, x, B, shots, seed, ev);
    });
  if (!a.noise.active())
    return std::make_unique<train::BatchExpectations>(
        [rm, &m, &theta](const double* x, int B, double* ev) { model::routed_forward(*rm, m, theta, x, B, nullptr, ev); });
  auto engine = std::make_shared<model::PieceExpectations>(
      a.noise.density() ? model::density_engine(theta, a.noise.model)
                        : model::trajectory_engine(theta, a.noise.model, a.noise.n_trajectories(), seed));
  return std::make_unique<train::BatchExpectations>([rm, engine, &m, &theta](const double* x, int B, double* ev) {
    model::routed_forward(*rm, m, theta, x, B, engine.get(), ev);
  });
}

std::string execution_line(const InspectArgs& a) {
  std::string s = "execution: " + a.execution;
  if (a.execution == "routed") s += " (routing register measured after G, then only the selected expert runs)";
  if (a.shots > 0) s += "; estimates from " + std::to_string(a.shots) + " shots per sample (seed " + std::to_string(a.noise.seed) + ")";
  return s + "\n";
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
    const bool was_csv = l.data.is_csv();
    l.data.task = a.task;
    if (l.data.is_csv() != was_csv) {  // pixel and feature scalings do not carry over
      l.data.scaling.clear();
      l.data.feature_transform = nullptr;
    }
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

// The binomial standard error of an accuracy measured on n samples: the
// spread of the estimate from the finite test set (each sample's noisy or
// shot-estimated prediction counts as one Bernoulli draw).
double accuracy_std_error(double acc, std::size_t n) { return n ? std::sqrt(acc * (1 - acc) / double(n)) : 0.0; }

void run_eval(const InspectArgs& a) {
  set_threads(a.threads);
  train::EvalNoise noise;
  const train::EvalNoise* np = eval_noise(a, noise);
  const Loaded l = load(a);
  const data::Dataset& d = *l.set;
  Workspace<double> ws;
  const auto runner = make_runner(a, l.model, l.ck.state.theta);
  const bool slow = np || runner;  // a noisy or routed evaluation takes seconds to minutes
  ProgressLine bar("eval");
  const train::Evaluation e = train::evaluate(l.model, l.ck.state.theta, d, ws, np, {}, runner.get(),
                                              [&](std::size_t done, std::size_t total) {
                                                if (slow) bar.update(done, total);
                                              });
  if (slow) bar.finish();
  const int C = l.model.n_classes(), L = experts(l.model);
  const std::vector<std::size_t> counts = d.class_counts();

  if (a.json) {
    ojson o;
    o["checkpoint"] = l.path;
    o["epoch"] = l.ck.state.epoch;
    o["task"] = task_json(l, a);
    o["samples"] = d.size();
    if (np) o["noise"] = noise_json(a);
    o["execution"] = a.execution;
    if (a.shots > 0) o["shots"] = a.shots, o["seed"] = a.noise.seed;
    o["accuracy_percent"] = train::to_percent(e.accuracy);
    o["accuracy_std_error_percent"] = train::to_percent(accuracy_std_error(e.accuracy, d.size()));
    o["loss"] = e.loss;
    o["class_names"] = d.class_names;
    o["counts"] = counts;
    o["confusion"] = e.confusion;
    std::vector<double> per_class(std::size_t(C), 0.0);
    for (int c = 0; c < C; ++c)
      if (counts[std::size_t(c)])
        per_class[std::size_t(c)] = train::to_percent(double(e.confusion[c][c]) / double(counts[c]));
    o["class_accuracy_percent"] = per_class;
    if (L > 0) o["routing_by_class"] = e.routing_by_class;
    o["model"] = ojson::parse(l.ck.model.to_json().dump());
    o["model"]["routing_qubits"] = l.model.routing_qubits.size();  // resolved (0 in a config: ceil(log2 L))
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
  if (a.execution != "coherent" || a.shots > 0) std::fputs(execution_line(a).c_str(), stdout);
  if (np || a.shots > 0)
    std::printf("accuracy: %.2f%% +- %.2f (standard error over the %zu samples)   loss: %.4f\n\n",
                train::to_percent(e.accuracy), train::to_percent(accuracy_std_error(e.accuracy, d.size())), d.size(),
                e.loss);
  else
    std::printf("accuracy: %.2f%%   loss: %.4f\n\n", train::to_percent(e.accuracy), e.loss);
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

// A field for a CSV file, quoted (RFC 4180) when it holds a comma, quote or line break.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// predict --input FILE: every row of an unlabelled CSV (the model's features,
// scaled as in training) -> a CSV of predicted classes and probabilities.
void run_predict_csv(const InspectArgs& a) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string path = fs::is_directory(a.checkpoint, ec) ? (fs::path(a.checkpoint) / "checkpoint").string() : a.checkpoint;
  if (!fs::exists(path, ec)) throw std::runtime_error("checkpoint " + path + " does not exist");
  const train::Checkpoint ck = train::load_checkpoint(path);
  const model::Model m = model::build_model(ck.model);
  const DataOptions d = DataOptions::from_json(ck.task);
  data::CsvOptions co;
  co.labelled = false;
  co.header = data::parse_csv_header(a.csv_header);
  data::Dataset x = data::read_csv(a.input, co);
  const int F = ck.model.n_features, C = m.n_classes();
  if (x.n_features != F)
    throw std::runtime_error(a.input + ": " + std::to_string(x.n_features) + " feature columns, the model in " + path +
                             " takes " + std::to_string(F) +
                             (x.n_features == F + 1 ? " (predict --input takes features only: drop the label column)" : ""));
  x.n_classes = C;
  x.y.assign(x.source_index.size(), 0);  // no labels (size() counts them): loss and accuracy are not used
  if (d.is_csv()) data::apply_feature_transform(d.transform(), x);  // as the training split was scaled
  std::vector<std::string> names = ck.task.value("class_names", std::vector<std::string>());
  if (int(names.size()) != C) {
    names.clear();
    for (int c = 0; c < C; ++c) names.push_back(std::to_string(c));
  }
  Workspace<double> ws;
  train::EvalNoise noise;
  const auto runner = make_runner(a, m, ck.state.theta);
  const train::Evaluation e = train::evaluate(m, ck.state.theta, x, ws, eval_noise(a, noise), {}, runner.get());
  std::ostringstream out;
  out.precision(17);
  out << "row,predicted";
  for (const auto& n : names) out << "," << csv_field("p_" + n);
  out << "\n";
  for (std::size_t i = 0; i < x.size(); ++i) {
    out << x.source_index[i] << "," << csv_field(names[std::size_t(e.predictions[i])]);
    for (int c = 0; c < C; ++c) out << "," << e.probabilities[i * std::size_t(C) + std::size_t(c)];
    out << "\n";
  }
  write_output(a.output, out.str());
  if (a.output != "-") std::fprintf(stderr, "wrote %s: %zu predictions\n", a.output.c_str(), x.size());
}

void run_predict(const InspectArgs& a) {
  set_threads(a.threads);
  if (!a.input.empty()) {
    if (a.index >= 0) throw std::runtime_error("--index picks a sample of the task; --input predicts every row of a file: give one");
    run_predict_csv(a);
    return;
  }
  if (a.index < 0) throw std::runtime_error("give --index I (a sample of the task) or --input FILE.csv (every row of a file)");
  const Loaded l = load(a);
  const std::size_t i = check_index(l, a);
  const data::Dataset one = data::subset(*l.set, {i});
  Workspace<double> ws;
  train::EvalNoise noise;
  const train::EvalNoise* np = eval_noise(a, noise);
  const auto runner = make_runner(a, l.model, l.ck.state.theta);
  const train::Evaluation e = train::evaluate(l.model, l.ck.state.theta, one, ws, np, {}, runner.get());
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
    o["execution"] = a.execution;
    if (a.shots > 0) o["shots"] = a.shots, o["seed"] = a.noise.seed;
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
  if (a.execution != "coherent" || a.shots > 0) std::fputs(execution_line(a).c_str(), stdout);
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

// The circuit as qelib1.inc gates (what a device is sent), for counting.
Circuit as_qelib1(const Circuit& c, const std::vector<double>& theta, const double* x) {
  return parse_qasm(write_qasm(c, theta, x)).circuit;
}

std::string cost_row(const std::string& what, const DecomposedCost& k) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "  %-44s %7ld %7ld %7ld %7d\n", what.c_str(), k.gates, k.cx, k.u, k.depth);
  return buf;
}

// export --routed: OUT is the OpenQASM 3 dynamic circuit; for a separable
// QMoE also STEM.router.qasm and STEM.expertK.qasm (OpenQASM 2.0, one per
// outcome k) for devices without feed-forward. Prints per-shot costs.
void export_routed(const InspectArgs& a, const Loaded& l, const std::vector<double>& x, const std::string& header) {
  const model::Model& m = l.model;
  const std::vector<double>& theta = l.ck.state.theta;
  if (m.routing_qubits.empty()) throw std::runtime_error("--routed needs a QMoE checkpoint (this model is a " + std::string(model::to_string(m.config.model)) + ")");
  const model::RoutedModel rm = model::split_routed(m);
  const int R = rm.n_outcomes();
  std::vector<Circuit> branches;
  for (int k = 0; k < R; ++k) branches.push_back(model::on_model_qubits(rm, rm.branch[std::size_t(k)]));
  std::ostringstream h;
  h << header << "\nrouted execution: the routing register is measured into route (route[i] = bit i of the outcome k,\n"
    << "the expert index) and only outcome k's gates run: expert k (k < " << m.config.experts
    << ") and the aggregation's X flips";
  std::vector<std::string> files = {a.qasm_out};
  std::vector<std::string> texts = {write_qasm3_dynamic(rm.pre, rm.routing_qubits, branches, theta, x.data(), h.str())};
  // p_k of this sample
  std::vector<double> ev(m.observables.size());
  model::routed_forward(rm, m, theta, x.data(), 1, nullptr, ev.data());
  std::vector<double> p(static_cast<std::size_t>(R));
  for (int k = 0; k < R; ++k) {
    double s = 1.0;
    for (int S = 1; S < R; ++S)
      s += ((std::popcount(unsigned(k & S)) & 1) ? -1.0 : 1.0) * ev[std::size_t(m.n_data_observables + S - 1)];
    p[std::size_t(k)] = s / R;
  }
  // costs per shot
  std::string table = "per shot, after decomposing into {CX, U} (adjacent U merged)\n";
  char hdr[200];
  std::snprintf(hdr, sizeof hdr, "  %-44s %7s %7s %7s %7s\n", "", "gates", "CX", "U", "depth");
  table += hdr;
  table += cost_row("coherent (one circuit)", decomposed_cost(as_qelib1(m.circuit, theta, x.data())));
  const Circuit pre = as_qelib1(rm.pre, theta, x.data());
  double mean_cx = 0, mean_depth = 0;
  for (int k = 0; k < R; ++k) {
    CostCounter dyn(m.circuit.n_qubits);
    dyn.add(pre);
    dyn.barrier();  // the feed-forward waits for the measurement
    if (!branches[std::size_t(k)].gates.empty()) dyn.add(as_qelib1(branches[std::size_t(k)], theta, x.data()));
    const DecomposedCost d = dyn.result();
    mean_cx += p[std::size_t(k)] * double(d.cx), mean_depth += p[std::size_t(k)] * d.depth;
    char what[100];
    std::snprintf(what, sizeof what, "routed, dynamic, outcome %d (p_k %.3f)", k, p[std::size_t(k)]);
    table += cost_row(what, d);
  }
  if (!rm.entangled) {
    const std::string stem = a.qasm_out.size() > 5 && a.qasm_out.ends_with(".qasm")
                                 ? a.qasm_out.substr(0, a.qasm_out.size() - 5) : a.qasm_out;
    const DecomposedCost router = decomposed_cost(as_qelib1(rm.router, theta, x.data()));
    {
      std::ostringstream t;
      t << header << "\nrouted execution, the routing circuit alone (run it, read route as the outcome k,\n"
        << "then run " << stem << ".expert<k>.qasm); q[j] is the model's routing qubit q[" << rm.n_data << "+j]";
      std::string text = write_qasm(rm.router, theta, x.data(), QasmWriteOptions{false, t.str()});
      text += "creg route[" + std::to_string(rm.n_routing) + "];\n";
      for (int i = 0; i < rm.n_routing; ++i)
        text += "measure q[" + std::to_string(rm.routing_bit_qubit[std::size_t(i)]) + "] -> route[" + std::to_string(i) + "];\n";
      files.push_back(stem + ".router.qasm");
      texts.push_back(text);
    }
    for (int k = 0; k < R; ++k) {
      const Circuit prog = model::expert_program(rm, k);
      std::ostringstream t;
      t << header << "\nrouted execution, the program for routing outcome k = " << k
        << (k < m.config.experts ? " (expert " + std::to_string(k) + ")" : std::string(" (no expert: the encoded data, flipped)"))
        << "\non the data register only (q[i] is the model's data qubit i)";
      files.push_back(stem + ".expert" + std::to_string(k) + ".qasm");
      texts.push_back(write_qasm(prog, theta, x.data(), QasmWriteOptions{true, t.str()}));
      DecomposedCost e = decomposed_cost(as_qelib1(prog, theta, x.data()));
      e.gates += router.gates, e.cx += router.cx, e.u += router.u, e.depth += router.depth;
      char what[100];
      std::snprintf(what, sizeof what, "routed, separate circuits, outcome %d", k);
      table += cost_row(what, e);
    }
  }
  char mean[160];
  std::snprintf(mean, sizeof mean, "  routed, dynamic, mean over p_k: %.1f CX, depth %.1f\n", mean_cx, mean_depth);
  table += mean;
  if (a.qasm_out == "-") {
    write_output("-", texts[0]);
    std::fputs(table.c_str(), stderr);
    return;
  }
  for (std::size_t f = 0; f < files.size(); ++f) write_output(files[f], texts[f]);
  std::fprintf(stderr, "wrote %s (OpenQASM 3, dynamic)", files[0].c_str());
  if (files.size() > 1)
    std::fprintf(stderr, ", %s and %d per-outcome OpenQASM 2.0 programs %s.expert0..%d.qasm\n", files[1].c_str(), R,
                 files[1].substr(0, files[1].size() - 12).c_str(), R - 1);
  else
    std::fprintf(stderr, "; no separate per-expert programs: the joint routing encoder entangles the registers "
                         "before the routing measurement, so only the dynamic circuit is exact\n");
  std::fputs(table.c_str(), stderr);
}

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
  if (a.routed_export) return export_routed(a, l, x, c.str());
  QasmWriteOptions opt;
  opt.comment = c.str();
  write_output(a.qasm_out, write_qasm(m.circuit, l.ck.state.theta, x.data(), opt));
  if (a.qasm_out != "-")
    std::fprintf(stderr, "wrote %s: %d qubits, %zu model gates\n", a.qasm_out.c_str(), m.circuit.n_qubits,
                 m.circuit.gates.size());
}

void add_common(CLI::App* cmd, InspectArgs& a) {
  cmd->add_option("--checkpoint", a.checkpoint, "checkpoint file (or a train --out directory)")->required();
  cmd->add_option("--task", a.task, "task: " + data::task_list() + ", or a CSV file")
      ->default_str("the checkpoint's");
  cmd->add_option("--data-dir", a.data_dir, "data directory")
      ->default_str("$QMOE_DATA_DIR, else ${XDG_DATA_HOME:-~/.local/share}/qmoe");
  cmd->add_option("--test-limit,--limit", a.limit,
                  "use only the first N samples of the split (0: all)")
      ->default_str("the checkpoint's")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--split", a.split, "test, train, or val (the validation part of a train --val run)")
      ->check(CLI::IsMember({"test", "train", "val"}));
}

void add_execution_options(CLI::App* cmd, InspectArgs& a) {
  cmd->add_option("--execution", a.execution,
                  "coherent (default: the QMoE as one circuit) or routed (measure the routing register after G, "
                  "then run only the selected expert; the same results, docs/models.md)")
      ->check(CLI::IsMember({"coherent", "routed"}));
  cmd->add_option("--shots", a.shots, "estimate every expectation from N shots per sample (--seed seeds them)")
      ->check(CLI::Range(1L, 100000000L));
}

}  // namespace

void add_inspect_commands(CLI::App& app) {
  {
    auto a = std::make_shared<InspectArgs>();
    CLI::App* cmd = app.add_subcommand("eval", "accuracy, confusion matrix and routing per class of a checkpoint");
    add_common(cmd, *a);
    cmd->add_flag("--json", a->json, "print everything as JSON");
    cmd->add_option("--threads", a->threads, "threads (0: all cores)")->check(CLI::NonNegativeNumber);
    a->noise.add(*cmd, true);
    add_execution_options(cmd, *a);
    cmd->callback([a] { run_eval(*a); });
  }
  {
    auto a = std::make_shared<InspectArgs>();
    CLI::App* cmd = app.add_subcommand("predict", "class probabilities, <Z> and routing of one sample");
    add_common(cmd, *a);
    cmd->add_option("--index", a->index, "sample number in the split (0-based)")->default_str("");
    cmd->add_option("--input", a->input,
                    "an unlabelled CSV (features only): predict every row, writing row, predicted class and class "
                    "probabilities as CSV to --output");
    cmd->add_option("--output", a->output, "with --input: the predictions CSV ('-': stdout)");
    cmd->add_option("--csv-header", a->csv_header, "with --input: is the first line a header? auto, yes, no")
        ->check(CLI::IsMember({"auto", "yes", "no"}));
    cmd->add_flag("--json", a->json, "print as one JSON line");
    a->noise.add(*cmd, true);
    add_execution_options(cmd, *a);
    cmd->callback([a] { run_predict(*a); });
  }
  {
    auto a = std::make_shared<InspectArgs>();
    CLI::App* cmd = app.add_subcommand("export", "the model's circuit for one sample as OpenQASM 2.0");
    add_common(cmd, *a);
    cmd->add_option("--index", a->index, "sample number in the split (0-based)")->required();
    cmd->add_option("--qasm", a->qasm_out, "output file ('-': stdout)")->required();
    cmd->add_flag("--routed", a->routed_export,
                  "routed execution (QMoE): OUT as an OpenQASM 3 dynamic circuit (measure the routing register, "
                  "if on its bits), plus OUT-stem.router.qasm and OUT-stem.expert<k>.qasm (OpenQASM 2.0) for devices "
                  "without feed-forward; prints gate, CNOT and depth counts per shot");
    cmd->callback([a] { run_export(*a); });
  }
}

}  // namespace qmoe::cli
