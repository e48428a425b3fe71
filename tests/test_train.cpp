// Training: determinism, resume, Adam and the loss, non-finite training;
// checkpoints: JSON, damage, checksums.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

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
  train::TrainConfig tc;
  tc.epochs = 2;
  tc.batch = 8;
  tc.lr = 0.05;
  tc.seed = 3;
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

  // damaged and foreign checkpoints: clear errors
  std::ofstream(path) << "{\"format\": \"qmoe-checkpoint\", \"version\": 1, \"model\": {}";
  EXPECT_THROW(train::load_checkpoint(path), std::runtime_error);
  nlohmann::json j = train::to_json(ck);
  j["state"]["theta"].push_back(0.5);
  std::ofstream(path) << j.dump();
  EXPECT_THROW(train::load_checkpoint(path), std::runtime_error);
  std::ofstream(path) << "[1,2,3]";
  EXPECT_THROW(train::load_checkpoint(path), std::runtime_error);
  // a non-string format or a huge version: our error, not nlohmann's type error or UB
  EXPECT_THROW(train::checkpoint_from_json({{"format", 5}}), std::runtime_error);
  nlohmann::json huge = train::to_json(ck);
  huge["version"] = 1e20;
  EXPECT_THROW(train::checkpoint_from_json(huge), std::runtime_error);
  EXPECT_THROW(train::load_checkpoint(path + ".missing"), std::runtime_error);
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
