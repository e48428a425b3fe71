// OpenQASM 2.0 reader and writer (see docs/qasm.md for the supported subset).
//
// Reader: every numeric gate argument in the file, in textual order, becomes
// one trainable parameter p_j (Angle::param(j)) whose initial value theta[j]
// is the evaluated expression; `u3(a,b,c) q[0];` gives three parameters. A
// broadcast gate (`rx(0.1) q;`) has one argument in the text, so its copies
// share one parameter. Qubits are numbered in declaration order across qreg
// statements (the first register's q[0] is qubit 0). `reset`, `if (c == n)`
// and measurements anywhere are kept as the program's steps (ParsedQasm::ops);
// a program that needs them mid-circuit is `dynamic` and runs through
// circuit/qasm_dynamic.hpp.
//
// Writer: a standalone file using only qelib1.inc gates with every angle
// resolved to a number (17 significant digits). Gates with two or more
// controls are decomposed (Barenco et al. 1995, lemma 7.5 with V^2 = U,
// recursively, ending in ccx / cu3 / u1), controls on |0> are wrapped in x.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <cstdint>
#include <vector>

#include "circuit/circuit.hpp"

namespace qmoe {

// A parse error at a position in the input (1-based line and column).
// what() is "line L, column C: message"; message() is the bare message.
class QasmError : public std::runtime_error {
 public:
  QasmError(int line, int column, const std::string& message);
  int line() const { return line_; }
  int column() const { return column_; }
  const std::string& message() const { return message_; }

 private:
  int line_, column_;
  std::string message_;
};

struct QasmRegister {
  std::string name;
  int size = 0;
  int offset = 0;  // global index of element 0 (quantum registers)
};

// One step of the program, in file order (docs/qasm.md, "Dynamic programs").
// Consecutive unconditioned gate statements share one Gates step.
struct QasmOp {
  enum class Kind { Gates, Measure, Reset };
  Kind kind = Kind::Gates;
  std::size_t begin = 0, end = 0;  // Gates: circuit.gates[begin, end)
  std::vector<int> qubits;         // Measure, Reset (a broadcast statement has several)
  std::vector<long> bits;          // Measure: bits[k] (a global classical bit) reads qubits[k]
  // Measure: bits[k] may be read from the final state instead (nothing later
  // acts on qubits[k], tests its register or overwrites the bit mid-circuit).
  std::vector<bool> at_end;
  int cond_reg = -1;               // `if (creg == cond_value)`: index into cregs; -1: always
  std::uint64_t cond_value = 0;
};

struct ParsedQasm {
  Circuit circuit;                  // n_params == theta.size(), no features
  std::vector<double> theta;        // initial value of each parameter p_j
  std::vector<QasmRegister> qregs;  // in declaration order
  std::vector<QasmRegister> cregs;  // offset: global index of bit 0 (classical bits numbered across registers)
  // Every `measure`: (qubit, global classical bit), in order (conditioned ones too).
  std::vector<std::pair<int, long>> measured;
  // The whole program step by step; `circuit` holds every gate, conditioned
  // ones included, in order.
  std::vector<QasmOp> ops;
  // True when the program has a `reset` (other than of a qubit still in |0>,
  // which is dropped), an `if`, or a measurement that is not at_end. Otherwise
  // `circuit` followed by reading `measured` from the final state is the
  // program exactly; a dynamic program needs circuit/qasm_dynamic.hpp.
  bool dynamic = false;
};

// The classical registers' value for a sampled basis state (bit q of `state`
// is qubit q), Qiskit's way: registers last-declared first, separated by
// spaces, each with its bit 0 on the right; unmeasured bits read 0.
std::string classical_bits(const ParsedQasm& p, std::uint64_t state);
// The same for given values of every classical bit (bits[i]: global bit i, 0 or 1).
std::string classical_bits(const ParsedQasm& p, const std::vector<char>& bits);

// Limits that keep hostile input cheap.
inline constexpr int kQasmMaxQubits = 30;
inline constexpr long kQasmMaxCbits = 1 << 20;
inline constexpr int kQasmMaxDepth = 200;  // expression nesting

ParsedQasm parse_qasm(std::string_view text);

struct QasmWriteOptions {
  bool measure = false;        // append `creg c[n]; measure q -> c;`
  std::string comment;         // optional header comment (one line per '\n')
};

// theta: the circuit's parameters; x: one sample's features (may be null when
// the circuit has no Feature angles). Throws std::invalid_argument on bad sizes.
std::string write_qasm(const Circuit& c, const std::vector<double>& theta,
                       const double* x = nullptr, const QasmWriteOptions& opt = {});

// An OpenQASM 3 dynamic circuit (stdgates.inc names; cu1 is written cp and
// cu3(t,p,l) as cu(t,p,l,0)): `pre` runs on qubit[n] q, the qubits `measured`
// are read into bit[r] route (route[i] = qubit measured[i]), then for each
// outcome k the gates of branches[k] run under `if (route == k) { ... }`
// (branches without gates are left out), and every qubit is measured into
// bit[n] c. All circuits on the same n qubits; 2^r branches.
std::string write_qasm3_dynamic(const Circuit& pre, const std::vector<int>& measured,
                                const std::vector<Circuit>& branches, const std::vector<double>& theta,
                                const double* x = nullptr, const std::string& comment = {});

// Exposed for tests: U = e^{i alpha} U3(theta, phi, lambda) exactly.
struct U3Decomposition {
  double alpha = 0, theta = 0, phi = 0, lambda = 0;
};
U3Decomposition decompose_u3(const Mat2& u);
// A unitary V with V*V = u (u a 2x2 unitary).
Mat2 sqrt_unitary(const Mat2& u);

}  // namespace qmoe
