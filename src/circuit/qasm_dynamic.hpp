// Simulating a dynamic OpenQASM 2.0 program: mid-circuit measurement, reset
// and `if (creg == n)` (docs/qasm.md, "Dynamic programs").
//
// The program runs on a tree of branches: a branch is a normalised state, the
// classical bits and a probability (or a number of shots). A measurement or
// reset whose qubit is in a superposition splits a branch in two (the state
// projected on each outcome and renormalised; a reset's 1 branch then gets an
// X); a conditioned step runs only in the branches whose register holds the
// value. Measurements the parser marked at_end are not branched on: they are
// read from the final state.
//
// * dynamic_expval_z: every branch, weighted by its probability: exact <Z_q>
//   of the final mixture.
// * dynamic_shots: the shots are split over the outcomes binomially at each
//   branching point and sampled from the final states of the branches they
//   reach. That has exactly the distribution of simulating every shot on its
//   own, at the cost of at most min(shots, branches) final states.
//
// The branches are walked depth first; each two-way split holds one copy of
// the state until its second branch runs (in dynamic_shots the branch with
// fewer shots runs first, so at most log2(shots) copies are held at once).
// Randomness comes from the seed and each branching point's position in the
// tree (sim/rng.hpp), so the result does not depend on threads or order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "circuit/qasm.hpp"

namespace qmoe {

// A dynamic program needs more branches or more held states than allowed.
class QasmBranchLimit : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct DynamicLimits {
  long max_branches = 4096;  // dynamic_expval_z: branches at the end of the program
  std::size_t max_state_bytes = std::size_t(2) << 30;  // states alive at once (both precisions)
};

// An outcome whose probability within its branch is at most this is treated as
// impossible (rounding residue, e.g. 1e-33 for a qubit that is exactly |0>):
// the other outcome then has probability 1 and no split happens.
inline constexpr double kQasmBranchCutoff = 1e-12;

// Exact <Z_q> of every qubit at the end of the program (the mixture over all
// mid-circuit outcomes). T: simulation precision (double or float). Throws
// QasmBranchLimit past the limits.
template <class T>
std::vector<double> dynamic_expval_z(const ParsedQasm& p, const DynamicLimits& limits = {});

struct DynamicShots {
  std::vector<long> ones;              // per qubit: shots that ended with the qubit at 1
  std::map<std::string, long> counts;  // classical_bits strings (when asked for)
  long branches = 0;                   // final states sampled
};

// `shots` runs of the program, seeded by `seed`; with `counts`, the classical
// registers' values at the end of each run (written as classical_bits).
template <class T>
DynamicShots dynamic_shots(const ParsedQasm& p, long shots, std::uint64_t seed, bool counts,
                           const DynamicLimits& limits = {});

}  // namespace qmoe
