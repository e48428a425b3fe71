// Training: the gradient of a batch's loss (finite differences, chunks),
// determinism, resume, Adam and the loss, non-finite training, and data
// parallelism (K workers give the numbers of one). Checkpoint files:
// test_checkpoint.cpp.
#include <gtest/gtest.h>

#include <barrier>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <thread>

#include "model/model.hpp"
#include "model_helpers.hpp"
#include "train/checkpoint.hpp"
#include "train/trainer.hpp"

using namespace qmoe;
using namespace qmoe::testing;

// Same seed: same numbers. Resuming after epoch 1 gives exactly the
// parameters of an uninterrupted 2-epoch run, through a checkpoint file.
TEST(Train, DeterministicAndResumable) {
  const model::Model m = model::build_model(small_qmoe(4, "rxry"));
  const data::Dataset tr = synthetic(40, 16, 4, 1), te = synthetic(12, 16, 4, 2);
  const train::TrainConfig tc = short_run(2, 8, 3);
  auto full = train::initial_state(m, tc), again = train::initial_state(m, tc);
  train::train(m, tc, tr, te, full, {});
  train::train(m, tc, tr, te, again, {});
  EXPECT_EQ(full.theta, again.theta);
  EXPECT_NE(full.theta, train::initial_state(m, tc).theta);
  EXPECT_LT(full.history.back().train_loss, full.history.front().train_loss + 0.5);

  const std::string path = (std::filesystem::temp_directory_path() / "qmoe_test_ckpt").string();
  train::TrainConfig one = tc;
  one.epochs = 1;
  auto part = train::initial_state(m, tc);
  train::train(m, one, tr, te, part, {});
  train::Checkpoint ck{m.config, tc, {{"task", "synthetic"}}, part};
  train::save_checkpoint(path, ck);
  train::Checkpoint back = train::load_checkpoint(path);
  train::train(m, tc, tr, te, back.state, {});
  EXPECT_EQ(back.state.theta, full.theta);
  EXPECT_EQ(back.state.epoch, 2);
  std::remove(path.c_str());
}

TEST(Train, AdamAndLossAgainstHandComputedValues) {
  train::Adam a;
  a.lr = 0.1;
  std::vector<double> th = {1.0, -2.0};
  a.step(th, {0.5, -4.0});
  // first step: mhat = g, vhat = g^2 -> update = lr * sign(g) (up to eps)
  EXPECT_NEAR(th[0], 0.9, 1e-7);
  EXPECT_NEAR(th[1], -1.9, 1e-7);
  const double logits[4] = {0.2, -0.1, 1.0, 0.0};
  const int labels[2] = {0, 0};
  double d[4];
  int correct = -1;
  const double loss = train::nll_log_softmax(logits, labels, 2, 2, d, &correct);
  const double l0 = std::log(std::exp(0.2) + std::exp(-0.1)) - 0.2, l1 = std::log(std::exp(1.0) + 1.0) - 1.0;
  EXPECT_NEAR(loss, (l0 + l1) / 2, 1e-14);
  EXPECT_EQ(correct, 2);
  EXPECT_NEAR(d[0], (std::exp(0.2) / (std::exp(0.2) + std::exp(-0.1)) - 1) / 2, 1e-14);
  EXPECT_NEAR(d[0] + d[1], 0.0, 1e-15);
}

// Training that turns non-finite stops at the first non-finite loss, gradient
// or parameter with NonFiniteError, and leaves the state at the last completed
// epoch (issue 16 item 7): on_epoch, which writes checkpoints, is not called.
TEST(Train, StopsAtFirstNonFiniteValue) {
  const model::Model m = model::build_model(small_qmoe(2, "rxry"));
  const data::Dataset tr = synthetic(24, 16, 4, 1), te = synthetic(8, 16, 4, 2);
  train::TrainConfig tc;
  tc.epochs = 1;
  tc.batch = 8;
  tc.lr = 0.05;
  train::TrainState st = train::initial_state(m, tc);
  train::train(m, tc, tr, te, st, {});
  const train::TrainState good = st;
  int epochs_reported = 0;
  train::Callbacks cb;
  cb.on_epoch = [&](const train::TrainState&, const train::EpochMetrics&, bool) { ++epochs_reported; };

  data::Dataset nan_set = tr;  // one NaN feature in the last sample
  nan_set.x.back() = std::nan("");
  tc.epochs = 3;
  try {
    train::train(m, tc, nan_set, te, st, cb);
    ADD_FAILURE() << "no error";
  } catch (const train::NonFiniteError& e) {
    EXPECT_NE(std::string(e.what()).find("training turned non-finite in epoch 2, batch "), std::string::npos) << e.what();
  }
  EXPECT_EQ(epochs_reported, 0);
  EXPECT_EQ(st.epoch, 1);
  EXPECT_EQ(st.theta, good.theta);
  EXPECT_EQ(st.adam.m, good.adam.m);
  EXPECT_EQ(st.adam.step_count, good.adam.step_count);
  EXPECT_EQ(st.rng_state, good.rng_state);
  EXPECT_EQ(st.history.size(), 1u);

  // A learning rate that throws the parameters to infinity: stopped too.
  train::TrainConfig wild = tc;
  wild.lr = 1e308;
  train::TrainState w = train::initial_state(m, wild);
  const std::vector<double> theta0 = w.theta;
  EXPECT_THROW(train::train(m, wild, tr, te, w, cb), train::NonFiniteError);
  EXPECT_EQ(w.theta, theta0);
  EXPECT_EQ(epochs_reported, 0);
}

// Finite input, finite training (issue 16 item 7): 8x8 images with pixels
// near the largest double train with the quadrant routing encoder, whose
// quadrant means used to overflow to infinity.
TEST(Train, HugeFiniteFeaturesTrainFinite) {
  const model::Model m = model::build_model(small_qmoe(4, "rxry", model::RoutingEncoder::Quadrant));
  data::Dataset tr = synthetic(16, 64, 4, 1);
  tr.x[3] = tr.x[5] = 1e308;                        // sample 0, top-left quadrant
  tr.x[64 + 36] = tr.x[64 + 37] = -1.7e308;         // sample 1, bottom-right quadrant
  train::TrainConfig tc;
  tc.epochs = 2;
  tc.batch = 8;
  train::TrainState st = train::initial_state(m, tc);
  train::train(m, tc, tr, tr, st, {});
  for (const auto& e : st.history) EXPECT_TRUE(std::isfinite(e.train_loss) && std::isfinite(e.test_loss));
  for (double t : st.theta) EXPECT_TRUE(std::isfinite(t));
}

// dLoss/dtheta of a mini-batch (NLL + load balancing) == central finite differences.
TEST(Train, BatchGradientMatchesFiniteDifferences) {
  for (model::ModelKind kind : {model::ModelKind::QMoE, model::ModelKind::QNN}) {
    model::ModelConfig cfg = small_qmoe(3, "rxry");
    cfg.model = kind;
    cfg.load_balance = kind == model::ModelKind::QMoE ? 0.3 : 0.0;
    cfg.n_classes = 2;  // the 'pairs' read-out
    cfg.depth = 1;
    const model::Model m = model::build_model(cfg);
    const data::Dataset d = synthetic(6, 16, 2, 5);
    std::mt19937_64 rng(9);
    const auto theta = random_vector(rng, std::size_t(m.n_params()));
    expect_batch_gradient_matches_fd(m, d, {0, 3, 4}, theta, 1e-10, model::to_string(kind));
  }
}

// The trainer's chunk-by-chunk path (forward_backward, chunks of 3 over 16
// rows: a short last chunk) gives the loss, the hit count and the gradient of
// the whole-batch parameter-shift path: each chunk's loss and dlogits are
// divided by the batch size, not the chunk's.
TEST(Train, BatchGradientByChunksMatchesWholeBatch) {
  model::ModelConfig cfg = small_qmoe(3, "rxry");
  cfg.model = model::ModelKind::QNN;
  cfg.n_classes = 2;
  cfg.depth = 1;
  const model::Model m = model::build_model(cfg);
  const data::Dataset d = synthetic(16, 16, 2, 5);
  std::vector<std::size_t> rows(16);
  std::iota(rows.begin(), rows.end(), std::size_t(0));
  std::mt19937_64 rng(11);
  const auto theta = random_vector(rng, std::size_t(m.n_params()));
  Workspace<double> ws;
  ws.chunk_size = 3;
  std::vector<double> grad, ps_grad;
  const auto [loss, hits] = train::batch_gradient(m, theta, d, rows, train::GradientMethod::Adjoint, grad, ws);
  const auto [ps_loss, ps_hits] = train::batch_gradient(m, theta, d, rows, train::GradientMethod::ParamShift, ps_grad, ws);
  EXPECT_NEAR(loss, ps_loss, 1e-12);
  EXPECT_EQ(hits, ps_hits);
  for (int j = 0; j < m.n_params(); ++j) EXPECT_NEAR(grad[std::size_t(j)], ps_grad[std::size_t(j)], 1e-10) << "param " << j;
}

// In-process workers for train::DataParallel (what src/cli/mpi.cpp does with
// MPI_Allgatherv): K threads, each worker's partials in a shared slot.
struct ThreadWorkers {
  int size;
  std::barrier<> sync;
  std::vector<std::vector<double>> parts;
  explicit ThreadWorkers(int k) : size(k), sync(k), parts(std::size_t(k)) {}
  train::DataParallel worker(int rank) {
    return {rank, size, [this, rank](const std::vector<double>& mine, const std::vector<int>& counts) {
              EXPECT_EQ(int(mine.size()), counts[std::size_t(rank)]);
              parts[std::size_t(rank)] = mine;
              sync.arrive_and_wait();
              std::vector<double> all;
              for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
              sync.arrive_and_wait();  // nobody refills a slot before all have read
              return all;
            }};
  }
  // Runs f(dp) on every worker at once; returns each worker's result.
  template <class F>
  auto run(F f) {
    std::vector<decltype(f(worker(0)))> out(static_cast<std::size_t>(size));
    std::vector<std::thread> threads;
    for (int r = 0; r < size; ++r) threads.emplace_back([&, r] { out[std::size_t(r)] = f(worker(r)); });
    for (auto& t : threads) t.join();
    return out;
  }
};

TEST(DataParallel, ShareIsContiguousAndBalanced) {
  for (int n : {0, 1, 5, 16}) {
    for (int k : {1, 2, 3, 7}) {
      int next = 0;
      for (int r = 0; r < k; ++r) {
        const auto [f, l] = train::share(n, r, k);
        EXPECT_EQ(f, next);
        EXPECT_LE(l - f, (n + k - 1) / k);
        EXPECT_GE(l - f, n / k);
        next = l;
      }
      EXPECT_EQ(next, n);
    }
  }
  EXPECT_THROW(train::share(4, 2, 2), std::invalid_argument);
}

// K workers, each with its run of a batch's chunks, give the loss, hits and
// gradient of one worker bit for bit (5 chunks of 8 over 3 workers; 2 chunks
// over 3 workers, one idle), and the evaluation likewise.
TEST(DataParallel, WorkersGiveTheNumbersOfOne) {
  const model::Model m = model::build_model(small_qmoe(4, "rxry"));
  const data::Dataset d = synthetic(50, 16, 4, 7);
  std::mt19937_64 rng(13);
  const auto theta = random_vector(rng, std::size_t(m.n_params()));
  for (int B : {40, 12}) {
    std::vector<std::size_t> rows(static_cast<std::size_t>(B));
    for (int i = 0; i < B; ++i) rows[std::size_t(i)] = std::size_t((7 * i + 3) % 50);
    Workspace<double> ws;
    ws.chunk_size = 8;
    std::vector<double> grad;
    const auto one = train::batch_gradient(m, theta, d, rows, train::GradientMethod::Adjoint, grad, ws);
    ThreadWorkers w(3);
    const auto got = w.run([&](const train::DataParallel& dp) {
      Workspace<double> wws;
      wws.chunk_size = 8;
      std::vector<double> g;
      const auto lh = train::batch_gradient(m, theta, d, rows, train::GradientMethod::Adjoint, g, wws, dp);
      return std::make_tuple(lh.first, lh.second, g);
    });
    for (const auto& [loss, hits, g] : got) {
      EXPECT_EQ(loss, one.first) << "batch " << B;
      EXPECT_EQ(hits, one.second);
      EXPECT_EQ(g, grad);
    }
  }
  Workspace<double> ws;
  ws.chunk_size = 8;
  const train::Evaluation one = train::evaluate(m, theta, d, ws);
  ThreadWorkers w(3);
  const auto got = w.run([&](const train::DataParallel& dp) {
    Workspace<double> wws;
    wws.chunk_size = 8;
    return train::evaluate(m, theta, d, wws, nullptr, dp);
  });
  for (const train::Evaluation& e : got) {
    EXPECT_EQ(e.expvals, one.expvals);
    EXPECT_EQ(e.loss, one.loss);
    EXPECT_EQ(e.accuracy, one.accuracy);
    EXPECT_EQ(e.confusion, one.confusion);
    EXPECT_EQ(e.routing_by_class, one.routing_by_class);
  }
}

// Training with 2 workers ends in the state of 1 worker, bit for bit.
TEST(DataParallel, TrainingWithTwoWorkersEqualsOne) {
  const model::Model m = model::build_model(small_qmoe(4, "rxry"));
  const data::Dataset tr = synthetic(44, 16, 4, 1), te = synthetic(12, 16, 4, 2);
  train::TrainConfig tc = short_run(2, 12, 3);
  tc.chunk = 4;
  auto one = train::initial_state(m, tc);
  train::train(m, tc, tr, te, one, {});
  ThreadWorkers w(2);
  const auto got = w.run([&](const train::DataParallel& dp) {
    auto st = train::initial_state(m, tc);
    train::train(m, tc, tr, te, st, {}, dp);
    return st;
  });
  for (const train::TrainState& st : got) {
    EXPECT_EQ(st.theta, one.theta);
    EXPECT_EQ(st.adam.m, one.adam.m);
    ASSERT_EQ(st.history.size(), one.history.size());
    for (std::size_t e = 0; e < st.history.size(); ++e) {
      EXPECT_EQ(st.history[e].train_loss, one.history[e].train_loss);
      EXPECT_EQ(st.history[e].test_loss, one.history[e].test_loss);
      EXPECT_EQ(st.history[e].train_acc, one.history[e].train_acc);
    }
  }
}

// The training settings' JSON has the limits of the CLI's flags, and numbers
// become integers only after a check (issue 16 items 10 and 11): errors name
// the field, never a conversion's undefined behaviour.
TEST(Train, ConfigJsonIsChecked) {
  const auto terr = [](nlohmann::json j) {
    nlohmann::json t = train::TrainConfig().to_json();
    t.update(j);
    try {
      train::TrainConfig::from_json(t);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(terr({{"chunk", 0}}), "chunk must be 1..1000000");
  EXPECT_EQ(terr({{"chunk", 2000000000}}), "chunk must be 1..1000000");
  EXPECT_EQ(terr({{"batch", train::TrainConfig::kMaxBatch}}), "accepted");
  EXPECT_EQ(terr({{"epochs", train::TrainConfig::kMaxEpochs + 1}}), "epochs must be 0..100000");
  nlohmann::json t = train::TrainConfig().to_json();
  for (const nlohmann::json& bad : {nlohmann::json(1e20), nlohmann::json(-1), nlohmann::json(0.5), nlohmann::json("7")}) {
    t["seed"] = bad;
    EXPECT_THROW(train::TrainConfig::from_json(t), std::invalid_argument) << bad.dump();
  }
  t["seed"] = 18446744073709551615ull;
  EXPECT_EQ(train::TrainConfig::from_json(t).seed, 18446744073709551615ull);
  t["seed"] = 3;
  t["epochs"] = 1e20;
  EXPECT_THROW(train::TrainConfig::from_json(t), std::invalid_argument);
}

// The gradient method's spellings parse to the enum and back; a wrong one throws.
TEST(Train, GradientMethodSpellingsRoundTrip) {
  for (const char* s : {"adjoint", "param-shift"})
    EXPECT_STREQ(train::to_string(train::parse_gradient_method(s)), s);
  EXPECT_EQ(train::parse_gradient_method("param-shift"), train::GradientMethod::ParamShift);
  EXPECT_THROW(train::parse_gradient_method("adjoint2"), std::invalid_argument);
}
