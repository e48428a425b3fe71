// qmoe train: trains a QMoE or QNN on a task, writing DIR/config.json,
// DIR/metrics.csv, DIR/checkpoint (last epoch) and DIR/checkpoint.best.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "cli/cli.hpp"
#include "cli/mpi.hpp"
#include "cli/train_common.hpp"

namespace qmoe::cli {
namespace {

struct TrainArgs {
  DataOptions data;
  model::ModelConfig model;
  std::string model_name = "qmoe";
  train::TrainConfig train;
  std::string out = "runs/latest";
  bool resume = false;
  int threads = 0;
  bool epochs_given = false;
  std::string setting_given;  // the options given that --resume would ignore, if any
  double val = 0;  // fraction of training data held out and evaluated instead of the test split
};

void run_train(TrainArgs& a) {
  namespace fs = std::filesystem;
  set_threads(a.threads);
  const std::string ckpt_path = (fs::path(a.out) / "checkpoint").string();
  train::Checkpoint ck;
  bool resumed = false;
  if (a.resume && !fs::exists(ckpt_path))
    throw std::runtime_error("--resume: no checkpoint in " + a.out + " to continue");
  if (fs::exists(ckpt_path)) {
    if (!a.resume)
      throw std::runtime_error(a.out + " already holds a checkpoint: pass --resume to continue it, or choose another --out");
    ck = train::load_checkpoint(ckpt_path);
    if (!a.setting_given.empty())
      throw std::runtime_error("--resume keeps the checkpoint's settings: drop " + a.setting_given +
                               " (only --epochs, --threads and --data-dir may change)");
    const int epochs = a.train.epochs;
    const std::string data_dir = a.data.data_dir;  // where the data is may differ from run to run
    a.data = DataOptions::from_json(ck.task);
    a.data.data_dir = data_dir;
    if (a.epochs_given && epochs < ck.state.epoch)
      throw std::runtime_error("--resume --epochs " + std::to_string(epochs) + ": the checkpoint has already trained " +
                               std::to_string(ck.state.epoch) + " epochs");
    if (a.epochs_given) ck.train.epochs = epochs;  // --epochs may extend a finished run
    resumed = true;
  }
  data::TaskData td = a.data.load();
  if (resumed) a.val = ck.task.value("val", 0.0);
  if (a.val > 0) {  // model selection without touching the test split
    data::Split sp = data::split_validation(td.train, a.val, resumed ? ck.train.seed : a.train.seed);
    td.train = std::move(sp.first);
    td.test = std::move(sp.second);
  }
  if (!resumed) {
    a.model.n_classes = td.train.n_classes;
    a.model.n_features = td.train.n_features;
    ck.model = resolve_model(a.model, a.model_name);
    ck.train = a.train;
    ck.task = a.data.to_json();
    if (a.val > 0) ck.task["val"] = a.val;
  }
  const model::Model m = model::build_model(ck.model);
  if (!resumed) ck.state = train::initial_state(m, ck.train);
  ck.train.validate();  // before anything is written
  if (td.train.size() == 0) throw std::runtime_error("the training split is empty");
  if (td.test.size() == 0)
    throw std::runtime_error(a.val > 0 ? "the validation split is empty: raise --val or the training samples"
                                       : "the task has no test split: give one with --test-csv or hold one out with --val");
  // Under mpirun every rank trains (its share of each batch, the same state
  // after each step); rank 0 alone writes (cli/mpi.hpp).
  const bool writer = mpi::rank() == 0;
  if (writer) fs::create_directories(a.out);
  nlohmann::json cfg = {{"model", ck.model.to_json()}, {"train", ck.train.to_json()}, {"task", ck.task},
                        {"params", m.n_params()}, {"qubits", m.circuit.n_qubits}, {"gates", m.circuit.gates.size()},
                        {"train_samples", td.train.size()}, {"test_samples", td.test.size()}};
  if (writer) train::write_file_atomic((fs::path(a.out) / "config.json").string(), cfg.dump(2) + "\n");

  const bool tty = isatty(fileno(stderr));
  std::fprintf(stderr, "%s %s on %s: %d qubits, %d parameters, %zu train / %zu %s samples%s\n",
               model::to_string(ck.model.model), ck.model.ops.c_str(), td.task.c_str(), m.circuit.n_qubits, m.n_params(),
               td.train.size(), td.test.size(), a.val > 0 ? "validation" : "test",
               resumed ? (", resuming after epoch " + std::to_string(ck.state.epoch)).c_str() : "");
  auto t_epoch = std::chrono::steady_clock::now();
  train::Callbacks cb;
  cb.on_batch = [&](int epoch, std::size_t done, std::size_t total, double loss, double acc) {
    if (!tty) return;
    if (done == std::size_t(std::min<long>(long(total), a.train.batch))) t_epoch = std::chrono::steady_clock::now();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_epoch).count();
    const double rate = secs > 0 ? double(done) / secs : 0.0;
    const int width = 24, filled = int(width * double(done) / double(total));
    std::fprintf(stderr, "\repoch %d/%d [%s%s] %3d%% loss %.4f acc %.2f%% %.0f samples/s, %.0f s left   ", epoch,
                 ck.train.epochs, std::string(std::size_t(filled), '#').c_str(),
                 std::string(std::size_t(width - filled), '.').c_str(), int(100.0 * double(done) / double(total)),
                 loss, 100 * acc, rate, rate > 0 ? double(total - done) / rate : 0.0);
  };
  cb.on_epoch = [&](const train::TrainState& st, const train::EpochMetrics& e, bool best) {
    ck.state = st;
    if (writer) {
      train::save_checkpoint(ckpt_path, ck);
      if (best) train::save_checkpoint(ckpt_path + ".best", ck);
      train::write_file_atomic((fs::path(a.out) / "metrics.csv").string(), train::metrics_csv(st.history, a.val > 0));
    }
    std::fprintf(stderr, "%sepoch %d/%d: train loss %.4f acc %.2f%%, %s loss %.4f acc %.2f%%, %.1f s\n",
                 tty ? "\r\033[K" : "", e.epoch, ck.train.epochs, e.train_loss, 100 * e.train_acc,
                 a.val > 0 ? "validation" : "test", e.test_loss,
                 100 * e.test_acc, e.seconds);
  };
  try {
    train::train(m, ck.train, td.train, td.test, ck.state, cb, mpi::data_parallel());
  } catch (const train::NonFiniteError& e) {  // ck.state: the last checkpoint written, if any
    throw std::runtime_error(std::string(e.what()) + (ck.state.epoch > 0 ? "; " + ckpt_path + " keeps epoch " +
                                                                               std::to_string(ck.state.epoch)
                                                                         : "; no checkpoint was written"));
  }
  if (writer) train::save_checkpoint(ckpt_path, ck);
  if (mpi::size() > 1) {
    const mpi::CommStats c = mpi::comm_stats();
    std::fprintf(stderr, "%d ranks: %ld gathers, %.3g MB, %.3g s in MPI_Allgatherv on rank 0\n", mpi::size(), c.calls,
                 c.bytes / 1e6, c.seconds);
  }
  const double acc = ck.state.history.empty() ? 0.0 : ck.state.history.back().test_acc;
  std::printf("%s accuracy: %.2f%%\n", a.val > 0 ? "validation" : "test", 100 * acc);
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "train a QMoE or a baseline QNN");
  a->data.add(*cmd, false);
  add_model_options(*cmd, a->model, a->model_name);
  cmd->add_option("--epochs", a->train.epochs, "epochs")->check(CLI::Range(0, train::TrainConfig::kMaxEpochs));
  cmd->add_option("--batch", a->train.batch, "mini-batch size")->check(CLI::Range(1, train::TrainConfig::kMaxBatch));
  cmd->add_option("--lr", a->train.lr, "Adam learning rate")->check(CLI::PositiveNumber);
  cmd->add_option("--seed", a->train.seed, "seed (initial parameters and shuffling)");
  add_enum_option(*cmd, "--gradient", a->train.gradient, train::parse_gradient_method, "adjoint (default) or param-shift");
  cmd->add_option("--chunk", a->train.chunk,
                 "samples per work item of the threads and MPI ranks (default 16; the sums go chunk by chunk, so it is "
                 "part of the run's numbers)")
      ->check(CLI::Range(1, train::TrainConfig::kMaxBatch));
  cmd->add_option("--out", a->out, "output directory");
  cmd->add_flag("--resume", a->resume, "continue the checkpoint in --out");
  cmd->add_option("--val", a->val, "hold out this fraction of the training data and evaluate on it instead of the test split")
      ->check(CLI::Range(0.0, 0.9));
  cmd->add_option("--threads", a->threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
  cmd->callback([a, cmd] {
    a->epochs_given = cmd->count("--epochs") > 0;
    for (const CLI::Option* o : cmd->get_options()) {
      const std::string name = o->get_name();
      if (o->count() > 0 && name != "--epochs" && name != "--threads" && name != "--data-dir" &&
          name != "--out" && name != "--resume" && name != "--help") {
        a->setting_given += (a->setting_given.empty() ? "" : " ") + name;
      }
    }
    run_train(*a);
  });
}

}  // namespace qmoe::cli
