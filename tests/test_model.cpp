// Models and training: QMoE structure (Eq. 1), gradients through the loss,
// determinism, resume, checkpoints.
#include <gtest/gtest.h>

#include <barrier>
#include <numeric>
#include <thread>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "circuit/execute.hpp"
#include "model/model.hpp"
#include "test_helpers.hpp"
#include "train/trainer.hpp"

using namespace qmoe;
using namespace qmoe::testing;

namespace {

model::ModelConfig small_qmoe(int experts, const std::string& ops = "rxryrz",
                              const std::string& routing_encoder = "full") {
  model::ModelConfig c;
  c.routing_encoder = routing_encoder;
  c.logit_scale = 1.0;
  c.model = "qmoe";
  c.ops = ops;
  c.n_classes = 4;
  c.n_features = routing_encoder == "quadrant" ? 64 : 16;
  c.data_qubits = 4;
  c.depth = 2;
  c.experts = experts;
  c.routing_depth = 2;
  c.encoder_ring_every = 2;
  return c;
}

data::Dataset synthetic(int n, int features, int classes, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  data::Dataset d;
  d.n_features = features;
  d.n_classes = classes;
  for (int c = 0; c < classes; ++c) d.class_names.push_back("c" + std::to_string(c));
  d.x = random_vector(rng, std::size_t(n) * features, -1.5, 1.5);
  for (int i = 0; i < n; ++i) {
    d.y.push_back(i % classes);
    d.x[std::size_t(i) * features + (i % classes)] += 2.0;  // a learnable signal
    d.source_index.push_back(i);
  }
  return d;
}

// Simulate a sub-list of the model's gates on a fresh register of `n` qubits,
// mapping model qubit q -> q - offset, dropping the listed control qubits.
// The listed gates of `full` on the qubits in `qubits` (circuit qubit
// qubits[j] becomes qubit j); controls on other qubits are dropped.
std::vector<cplx> run_subcircuit(const Circuit& full, const std::vector<int>& qubits, const std::vector<double>& theta,
                                 const double* x, const std::vector<std::size_t>& gates) {
  auto index = [&](int q) { return int(std::find(qubits.begin(), qubits.end(), q) - qubits.begin()); };
  Circuit c;
  c.n_qubits = int(qubits.size());
  c.n_params = full.n_params;
  c.n_features = full.n_features;
  for (std::size_t gi : gates) {
    Gate g = full.gates[gi];
    std::vector<Control> kept;
    for (const Control& ctl : g.controls)
      if (index(ctl.qubit) < c.n_qubits) kept.push_back({index(ctl.qubit), ctl.on_one});
    g.controls = kept;
    g.target = index(g.target);
    EXPECT_LT(g.target, c.n_qubits);
    add_gate(c, g);
  }
  return dense_run(c, theta, x);
}

}  // namespace

// <Z_q> of the QMoE == sum_k p_k <Z_q>_k with p_k from the routing register alone
// and <Z_q>_k from expert k alone on the data register (the paper's Eq. 1),
// computed with independent small simulations.
TEST(Model, QmoeIsMixtureOfExperts) {
  for (int L : {2, 3, 4}) for (const char* enc : {"full", "quadrant"}) {
    const model::Model m = model::build_model(small_qmoe(L, "rxryrz", enc));
    const int r = int(m.routing_qubits.size()), n = m.config.data_qubits;
    ASSERT_EQ(r, L <= 2 ? 1 : 2);
    std::mt19937_64 rng(20 + L);
    const auto theta = random_vector(rng, std::size_t(m.n_params()));
    const auto x = random_vector(rng, std::size_t(m.circuit.n_features));
    // The QMoE itself
    Workspace<double> ws;
    std::vector<double> ev(m.observables.size());
    forward(m.circuit, theta, x.data(), 1, m.observables, ev.data(), ws);
    const auto p = model::routing_probabilities(m, ev.data(), 1);
    // classify gates by the register they touch; bit(q): the routing bit of circuit qubit q, or -1
    auto bit = [&](int q) {
      for (int i = 0; i < r; ++i)
        if (m.routing_qubits[std::size_t(i)] == q) return i;
      return -1;
    };
    std::vector<std::size_t> routing_gates, data_prefix;
    std::vector<std::vector<std::size_t>> expert_gates(std::size_t(1) << r);
    std::vector<std::size_t> aggregation;
    for (std::size_t gi = 0; gi < m.circuit.gates.size(); ++gi) {
      const Gate& g = m.circuit.gates[gi];
      bool on_routing = bit(g.target) >= 0, ctrl_routing = false;
      for (const Control& ctl : g.controls) ctrl_routing |= bit(ctl.qubit) >= 0;
      if (on_routing) { routing_gates.push_back(gi); continue; }
      if (!ctrl_routing) { data_prefix.push_back(gi); continue; }
      int k = 0, nr = 0;
      for (const Control& ctl : g.controls)
        if (bit(ctl.qubit) >= 0) k |= (ctl.on_one ? 1 : 0) << bit(ctl.qubit), ++nr;
      if (nr == r) expert_gates[std::size_t(k)].push_back(gi);
      else aggregation.push_back(gi);  // CNOT from one routing qubit
    }
    // p_k from the routing register alone (routing bit i as qubit i: basis index k)
    const auto psi_r = run_subcircuit(m.circuit, m.routing_qubits, theta, x.data(), routing_gates);
    double total = 0;
    for (int k = 0; k < L; ++k) {
      EXPECT_NEAR(p[std::size_t(k)], std::norm(psi_r[std::size_t(k)]), 1e-12) << "L=" << L << " k=" << k;
      total += p[std::size_t(k)];
    }
    EXPECT_LE(total, 1.0 + 1e-12);
    if (L == 4 || L == 2) {
      EXPECT_NEAR(total, 1.0, 1e-12);
    }
    // <Z_q> from each expert alone, with the aggregation flips of its branch
    std::vector<double> mix(std::size_t(n), 0.0);
    for (int k = 0; k < (1 << r); ++k) {
      std::vector<std::size_t> gates = data_prefix;
      if (k < L) gates.insert(gates.end(), expert_gates[std::size_t(k)].begin(), expert_gates[std::size_t(k)].end());
      for (std::size_t gi : aggregation) {  // X on a data qubit when its routing qubit is 1
        const Gate& g = m.circuit.gates[gi];
        if ((k >> bit(g.controls[0].qubit)) & 1) gates.push_back(gi);
      }
      const auto psi_d = run_subcircuit(m.circuit, m.data_qubits, theta, x.data(), gates);
      for (int q = 0; q < n; ++q) mix[std::size_t(q)] += std::norm(psi_r[std::size_t(k)]) * dense_expval(psi_d, PauliString::Z(q));
    }
    for (int q = 0; q < n; ++q) EXPECT_NEAR(ev[std::size_t(q)], mix[std::size_t(q)], 1e-12) << "L=" << L << " q=" << q;
  }
}

// dLoss/dtheta of a mini-batch (NLL + load balancing) == central finite differences.
TEST(Model, BatchGradientMatchesFiniteDifferences) {
  for (const char* kind : {"qmoe", "qnn"}) {
    model::ModelConfig cfg = small_qmoe(3, "rxry");
    cfg.model = kind;
    cfg.load_balance = std::string(kind) == "qmoe" ? 0.3 : 0.0;
    cfg.n_classes = 2;  // the 'pairs' read-out
    cfg.depth = 1;
    const model::Model m = model::build_model(cfg);
    const data::Dataset d = synthetic(6, 16, 2, 5);
    std::vector<std::size_t> rows = {0, 3, 4};
    std::mt19937_64 rng(9);
    auto theta = random_vector(rng, std::size_t(m.n_params()));
    Workspace<double> ws;
    std::vector<double> grad, ps_grad, g2;
    train::batch_gradient(m, theta, d, rows, "adjoint", grad, ws);
    train::batch_gradient(m, theta, d, rows, "param-shift", ps_grad, ws);
    const double h = 1e-5;
    for (int j = 0; j < m.n_params(); ++j) {
      auto tp = theta, tm = theta;
      tp[std::size_t(j)] += h, tm[std::size_t(j)] -= h;
      const double fp = train::batch_gradient(m, tp, d, rows, "adjoint", g2, ws).first;
      const double fm = train::batch_gradient(m, tm, d, rows, "adjoint", g2, ws).first;
      EXPECT_NEAR(grad[std::size_t(j)], (fp - fm) / (2 * h), 1e-7) << kind << " param " << j;
      EXPECT_NEAR(grad[std::size_t(j)], ps_grad[std::size_t(j)], 1e-10) << kind << " param " << j;
    }
  }
}

// The trainer's chunk-by-chunk path (forward_backward, chunks of 3 over 16
// rows: a short last chunk) gives the loss, the hit count and the gradient of
// the whole-batch parameter-shift path: each chunk's loss and dlogits are
// divided by the batch size, not the chunk's.
TEST(Model, BatchGradientByChunksMatchesWholeBatch) {
  model::ModelConfig cfg = small_qmoe(3, "rxry");
  cfg.model = "qnn";
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
  const auto [loss, hits] = train::batch_gradient(m, theta, d, rows, "adjoint", grad, ws);
  const auto [ps_loss, ps_hits] = train::batch_gradient(m, theta, d, rows, "param-shift", ps_grad, ws);
  EXPECT_NEAR(loss, ps_loss, 1e-12);
  EXPECT_EQ(hits, ps_hits);
  for (int j = 0; j < m.n_params(); ++j) EXPECT_NEAR(grad[std::size_t(j)], ps_grad[std::size_t(j)], 1e-10) << "param " << j;
}

TEST(Model, ParameterCountsAndMatchedBaseline) {
  model::ModelConfig q;  // defaults: 8 data qubits, 4 experts, depth 3, rxry
  const model::Model qm = model::build_model(q);
  EXPECT_EQ(qm.circuit.n_qubits, 10);
  EXPECT_EQ(qm.n_params(), 4 * 3 * 8 * 2 + 2 * 2 * 2);
  model::ModelConfig b = q;
  b.model = "qnn";
  EXPECT_EQ(model::build_model(b).n_params(), 3 * 8 * 2);
  b.depth = model::matched_depth(b, qm.n_params());
  EXPECT_LE(std::abs(model::build_model(b).n_params() - qm.n_params()), 8);
  for (const auto& [ops, per] : std::vector<std::pair<std::string, int>>{{"rx", 1}, {"ry", 1}, {"rxryrz", 3}}) {
    b.ops = ops;
    b.depth = 3;
    EXPECT_EQ(model::build_model(b).n_params(), 3 * 8 * per);
  }
}

TEST(Model, ConfigValidationAndJson) {
  model::ModelConfig c;
  EXPECT_EQ(model::ModelConfig::from_json(c.to_json()).to_json(), c.to_json());
  auto bad = [](auto mutate) {
    model::ModelConfig c;
    mutate(c);
    return c;
  };
  EXPECT_THROW(model::build_model(bad([](auto& c) { c.ops = "rq"; })), std::invalid_argument);
  EXPECT_THROW(model::build_model(bad([](auto& c) { c.experts = 5, c.routing_qubits = 2; })), std::invalid_argument);
  EXPECT_THROW(model::build_model(bad([](auto& c) { c.n_classes = 9; })), std::invalid_argument);
  EXPECT_THROW(model::build_model(bad([](auto& c) { c.model = "moe"; })), std::invalid_argument);
  EXPECT_THROW(model::ModelConfig::from_json({{"bogus", 1}}), std::invalid_argument);
  EXPECT_THROW(model::ModelConfig::from_json({{"depth", "two"}}), std::invalid_argument);
}

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
    std::vector<decltype(f(worker(0)))> out(std::size_t(size));
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
    std::vector<std::size_t> rows(std::size_t(B));
    for (int i = 0; i < B; ++i) rows[std::size_t(i)] = std::size_t((7 * i + 3) % 50);
    Workspace<double> ws;
    ws.chunk_size = 8;
    std::vector<double> grad;
    const auto one = train::batch_gradient(m, theta, d, rows, "adjoint", grad, ws);
    ThreadWorkers w(3);
    const auto got = w.run([&](const train::DataParallel& dp) {
      Workspace<double> wws;
      wws.chunk_size = 8;
      std::vector<double> g;
      const auto lh = train::batch_gradient(m, theta, d, rows, "adjoint", g, wws, dp);
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
  train::TrainConfig tc;
  tc.epochs = 2;
  tc.batch = 12;
  tc.chunk = 4;
  tc.lr = 0.05;
  tc.seed = 3;
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
