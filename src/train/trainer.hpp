// Training and evaluation of a model on a data set. No printing and no files:
// progress and end-of-epoch results go to callbacks (the CLI draws a progress
// bar and writes checkpoints, train/checkpoint.hpp; Python bindings or MPI can
// plug in their own). The settings and the state: train/train_state.hpp.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/data.hpp"
#include "grad/adjoint.hpp"
#include "grad/noise.hpp"
#include "model/model.hpp"
#include "train/optim.hpp"
#include "train/train_state.hpp"

namespace qmoe::train {

struct Evaluation {
  double loss = 0, accuracy = 0;  // accuracy in [0,1]
  std::vector<int> predictions;   // per sample
  std::vector<double> probabilities;  // softmax, [n][C]
  std::vector<double> expvals;        // [n][K] model observables
  std::vector<double> routing;        // [n][L] (QMoE)
  std::vector<std::vector<int>> confusion;        // [true][predicted]
  std::vector<std::vector<double>> routing_by_class;  // [class][expert] mean p_k
  // Routing::Sampled: each sample's measured choice (the most likely routing
  // state) and their counts [class][routing state] (train/hard_routing.hpp).
  std::vector<int> choices;
  std::vector<std::vector<double>> choice_counts;
};

// Simulated hardware noise for evaluate() (grad/noise.hpp).
struct EvalNoise {
  NoiseModel model;
  int trajectories = 100;
  std::uint64_t seed = 0;
};

// Data parallelism over workers (MPI ranks: src/cli/mpi.cpp; this layer knows
// no MPI). Work is cut into chunks of ws.chunk_size samples (a mini-batch, the
// evaluation set); worker `rank` of `size` takes the contiguous run of chunks
// share() gives it and computes their partials (a chunk's dL/dtheta, loss and
// hits; its samples' expectation values); `gather` returns every worker's
// partials, worker after worker, hence in chunk order; each worker then sums
// them in chunk order exactly as one worker alone does. So K workers give the
// numbers of one, bit for bit, whatever K and the threads inside each. The
// adjoint gradient without --load-balance is split (the default); the paths
// whose loss couples the batch (--load-balance, --routing sampled, param-shift)
// run the whole batch on every worker (the same numbers, no speed-up). Default:
// one worker.
struct DataParallel {
  int rank = 0, size = 1;
  // mine: this worker's doubles; counts[w]: how many worker w gives (all
  // workers pass the same counts). Returns all of them, worker by worker.
  std::function<std::vector<double>(const std::vector<double>& mine, const std::vector<int>& counts)> gather;
};

// Worker `rank`'s run [first, last) of n chunks shared out over `size` workers
// (contiguous, sizes differing by at most one).
std::pair<int, int> share(int n, int rank, int size);

// How evaluate() gets the model's expectations of a batch of circuit inputs
// (model::circuit_inputs rows): ev[b * K + k] for the model's K observables.
// E.g. routed execution or shot estimates (model/routed.hpp, grad/shots.hpp).
using BatchExpectations = std::function<void(const double* x, int batch, double* ev)>;

// Runs the model on every sample of d (inference only); with noise, each
// sample's expectation values are trajectory means under that noise model;
// with `run`, they come from it (noise is then ignored). Without noise or
// `run` the samples are shared out over dp's workers. `progress`, if set, is
// called after each step of (this worker's) samples: (done, total).
Evaluation evaluate(const model::Model& m, const std::vector<double>& theta, const data::Dataset& d,
                    Workspace<double>& ws, const EvalNoise* noise = nullptr, const DataParallel& dp = {},
                    const BatchExpectations* run = nullptr,
                    const std::function<void(std::size_t done, std::size_t total)>& progress = {});

// Loss and gradient of one mini-batch (rows of d); grad is overwritten.
// Returns {loss, correct}. The batch's chunks are shared out over dp's workers.
// route_seed: the draws of sampled routing (train/hard_routing.hpp; the trainer
// passes a hash of the seed and the optimiser step).
// With shots.count > 0 (method must be ParamShift) the expectations and the
// shifted evaluations are shot estimates drawn from shots.seed.
struct Shots {
  long count = 0;  // 0: exact expectations
  std::uint64_t seed = 0;
};
std::pair<double, int> batch_gradient(const model::Model& m, const std::vector<double>& theta,
                                      const data::Dataset& d, const std::vector<std::size_t>& rows,
                                      GradientMethod method, std::vector<double>& grad,
                                      Workspace<double>& ws, const DataParallel& dp = {},
                                      std::uint64_t route_seed = 0, const Shots& shots = {});

struct Callbacks {
  // after each mini-batch: samples done this epoch, of total; running loss and accuracy
  std::function<void(int epoch, std::size_t done, std::size_t total, double loss, double acc)> on_batch;
  // after each epoch, with the state to checkpoint; is_best when test accuracy improved
  std::function<void(const TrainState& state, const EpochMetrics& m, bool is_best)> on_epoch;
};

// train() stops with this at the first non-finite loss, gradient, parameter
// or evaluation loss, before the state is updated or on_epoch is called: the
// state (and any checkpoint written from it) stays the last good one.
struct NonFiniteError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Bytes that train() allocates for state vectors, estimated before it does:
// each of `threads` workers holds 3 states of 2^qubits amplitudes for
// min(chunk, batch) samples (forward, bra, ket of the adjoint sweep) plus up to
// kTrainingSavedLayers saved layer states, 16 bytes per amplitude. The CLI
// compares it with the machine's available memory before training.
double estimate_training_bytes(const model::Model& m, const TrainConfig& tc, int threads);

// A fresh state: initial parameters from the seed.
TrainState initial_state(const model::Model& m, const TrainConfig& tc);

// Trains from `state` (fresh or resumed) up to tc.epochs; every worker of dp
// runs this with the same arguments and ends with the same state. Throws
// NonFiniteError when training turns non-finite (state: the last completed epoch).
// An empty test_set skips the evaluation after each epoch (its metrics are NaN,
// stored as null in a checkpoint): the Python estimators' fit() without an eval_set.
void train(const model::Model& m, const TrainConfig& tc, const data::Dataset& train_set,
           const data::Dataset& test_set, TrainState& state, const Callbacks& cb, const DataParallel& dp = {});

}  // namespace qmoe::train
