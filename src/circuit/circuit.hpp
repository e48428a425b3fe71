// Circuit description: a list of gates whose angles come from constants,
// trainable parameters or per-sample input features.
//
// Conventions follow Qiskit / OpenQASM 2.0 (qelib1.inc):
//   - qubit 0 is the least significant bit of a basis-state index;
//   - RX(t) = exp(-i t X/2), RY(t) = exp(-i t Y/2), RZ(t) = exp(-i t Z/2);
//   - U1(l) = diag(1, e^{il}); U2(p,l) = U3(pi/2,p,l);
//     U3(t,p,l) = [[cos(t/2), -e^{il} sin(t/2)], [e^{ip} sin(t/2), e^{i(p+l)} cos(t/2)]];
//   - SX = sqrt(X) = 1/2 [[1+i, 1-i], [1-i, 1+i]].
// A controlled gate is a 1-qubit gate plus a list of controls, each on |1> or |0>.
// See docs/conventions.md.
#pragma once

#include <array>
#include <complex>
#include <cstdint>
#include <string>
#include <vector>

namespace qmoe {

using cplx = std::complex<double>;
using Mat2 = std::array<cplx, 4>;  // row-major [m00, m01, m10, m11]

enum class GateKind : std::uint8_t {
  I, H, X, Y, Z, S, Sdg, T, Tdg, SX,  // fixed 1-qubit gates
  RX, RY, RZ, U1, U2, U3,             // parameterised 1-qubit gates
  Matrix,                             // any fixed 2x2 unitary (Gate::matrix)
  Swap,                               // 2 targets; may also carry controls
};

// Number of angles a gate kind takes (U2: 2, U3: 3, RX..U1: 1, others 0).
int angle_count(GateKind kind);
// Lower-case OpenQASM-style name ("rx", "u3", "swap", "unitary", ...).
const char* gate_name(GateKind kind);

// Where a gate angle comes from.
enum class AngleSource : std::uint8_t { Constant, Param, Feature };

// angle = value                       (Constant)
// angle = scale * theta[index]        (Param)      shared by every sample
// angle = scale * x[b][index]         (Feature)    one per sample b
struct Angle {
  AngleSource source = AngleSource::Constant;
  int index = 0;
  double value = 0.0;  // the constant (Constant) or the scale (Param, Feature)

  static Angle constant(double v) { return {AngleSource::Constant, 0, v}; }
  static Angle param(int i, double scale = 1.0) { return {AngleSource::Param, i, scale}; }
  static Angle feature(int i, double scale = 1.0) { return {AngleSource::Feature, i, scale}; }
};

struct Control {
  int qubit = 0;
  bool on_one = true;  // control on |1> (true) or on |0> (false)
};

struct Gate {
  GateKind kind = GateKind::I;
  int target = 0;
  int target2 = -1;  // second target, Swap only
  std::vector<Control> controls;
  std::array<Angle, 3> angles{};  // the first angle_count(kind) are used
  Mat2 matrix{};                  // GateKind::Matrix only
};

struct Circuit {
  int n_qubits = 0;
  int n_params = 0;    // size of theta
  int n_features = 0;  // per-sample feature count
  std::vector<Gate> gates;
};

// ---- building circuits (validated: throws std::invalid_argument) ----------
// Appends a gate after checking qubits are in range and distinct and angle
// indices fit (n_params / n_features grow to fit Param / Feature indices).
void add_gate(Circuit& c, Gate g);
Gate make_gate(GateKind kind, int target, std::vector<Control> controls = {},
               std::array<Angle, 3> angles = {});

// ---- matrices --------------------------------------------------------------
// The 2x2 matrix of a 1-qubit kind at the given angles.
Mat2 gate_matrix(GateKind kind, const double* angles, const Mat2& fixed = {});
// d(matrix)/d(angle j).
Mat2 gate_matrix_derivative(GateKind kind, const double* angles, int j);
Mat2 dagger(const Mat2& m);

// Resolve gate g's angles for one sample (features may be null when the
// circuit has no Feature angles).
std::array<double, 3> resolve_angles(const Gate& g, const double* theta, const double* x);

// True when some angle of g comes from a Feature (the gate differs per sample).
bool is_per_sample(const Gate& g);

// Dense 2^n x 2^n matrix of one gate (slow; tests and small-circuit tools).
std::vector<cplx> dense_gate_matrix(int n_qubits, const Gate& g, const double* angles);

// Human-readable one-line description, e.g. "crx(theta[3]) q[1] ctrl q[0]=1".
std::string describe(const Gate& g);

}  // namespace qmoe
