#include "circuit/circuit.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace qmoe {

namespace {
const cplx I1{0.0, 1.0};
constexpr double kInvSqrt2 = 0.70710678118654752440;
}  // namespace

int angle_count(GateKind kind) {
  switch (kind) {
    case GateKind::RX: case GateKind::RY: case GateKind::RZ: case GateKind::U1: return 1;
    case GateKind::U2: return 2;
    case GateKind::U3: return 3;
    default: return 0;
  }
}

const char* gate_name(GateKind kind) {
  switch (kind) {
    case GateKind::I: return "id";
    case GateKind::H: return "h";
    case GateKind::X: return "x";
    case GateKind::Y: return "y";
    case GateKind::Z: return "z";
    case GateKind::S: return "s";
    case GateKind::Sdg: return "sdg";
    case GateKind::T: return "t";
    case GateKind::Tdg: return "tdg";
    case GateKind::SX: return "sx";
    case GateKind::RX: return "rx";
    case GateKind::RY: return "ry";
    case GateKind::RZ: return "rz";
    case GateKind::U1: return "u1";
    case GateKind::U2: return "u2";
    case GateKind::U3: return "u3";
    case GateKind::Matrix: return "unitary";
    case GateKind::Swap: return "swap";
  }
  return "?";
}

Mat2 gate_matrix(GateKind kind, const double* a, const Mat2& fixed) {
  switch (kind) {
    case GateKind::I: case GateKind::Swap: return {1, 0, 0, 1};
    case GateKind::H: return {kInvSqrt2, kInvSqrt2, kInvSqrt2, -kInvSqrt2};
    case GateKind::X: return {0, 1, 1, 0};
    case GateKind::Y: return {0, -I1, I1, 0};
    case GateKind::Z: return {1, 0, 0, -1};
    case GateKind::S: return {1, 0, 0, I1};
    case GateKind::Sdg: return {1, 0, 0, -I1};
    case GateKind::T: return {1, 0, 0, std::polar(1.0, M_PI / 4)};
    case GateKind::Tdg: return {1, 0, 0, std::polar(1.0, -M_PI / 4)};
    case GateKind::SX: return {cplx(0.5, 0.5), cplx(0.5, -0.5), cplx(0.5, -0.5), cplx(0.5, 0.5)};
    case GateKind::RX: {
      double c = std::cos(a[0] / 2), s = std::sin(a[0] / 2);
      return {c, cplx(0, -s), cplx(0, -s), c};
    }
    case GateKind::RY: {
      double c = std::cos(a[0] / 2), s = std::sin(a[0] / 2);
      return {c, -s, s, c};
    }
    case GateKind::RZ: return {std::polar(1.0, -a[0] / 2), 0, 0, std::polar(1.0, a[0] / 2)};
    case GateKind::U1: return {1, 0, 0, std::polar(1.0, a[0])};
    case GateKind::U2: {
      const double b[3] = {M_PI / 2, a[0], a[1]};
      return gate_matrix(GateKind::U3, b, fixed);
    }
    case GateKind::U3: {
      double c = std::cos(a[0] / 2), s = std::sin(a[0] / 2);
      return {c, -std::polar(s, a[2]), std::polar(s, a[1]), std::polar(c, a[1] + a[2])};
    }
    case GateKind::Matrix: return fixed;
  }
  throw std::logic_error("gate_matrix: unknown gate kind");
}

Mat2 gate_matrix_derivative(GateKind kind, const double* a, int j) {
  switch (kind) {
    case GateKind::RX: {
      double c = std::cos(a[0] / 2) / 2, s = std::sin(a[0] / 2) / 2;
      return {-s, cplx(0, -c), cplx(0, -c), -s};
    }
    case GateKind::RY: {
      double c = std::cos(a[0] / 2) / 2, s = std::sin(a[0] / 2) / 2;
      return {-s, -c, c, -s};
    }
    case GateKind::RZ:
      return {-0.5 * I1 * std::polar(1.0, -a[0] / 2), 0, 0, 0.5 * I1 * std::polar(1.0, a[0] / 2)};
    case GateKind::U1: return {0, 0, 0, I1 * std::polar(1.0, a[0])};
    case GateKind::U2: {
      const double b[3] = {M_PI / 2, a[0], a[1]};
      return gate_matrix_derivative(GateKind::U3, b, j + 1);
    }
    case GateKind::U3: {
      double c = std::cos(a[0] / 2), s = std::sin(a[0] / 2);
      if (j == 0)
        return {-s / 2, -std::polar(c / 2, a[2]), std::polar(c / 2, a[1]),
                -std::polar(s / 2, a[1] + a[2])};
      if (j == 1) return {0, 0, I1 * std::polar(s, a[1]), I1 * std::polar(c, a[1] + a[2])};
      if (j == 2) return {0, -I1 * std::polar(s, a[2]), 0, I1 * std::polar(c, a[1] + a[2])};
      break;
    }
    default: break;
  }
  throw std::logic_error("gate_matrix_derivative: gate has no such angle");
}

Mat2 dagger(const Mat2& m) {
  return {std::conj(m[0]), std::conj(m[2]), std::conj(m[1]), std::conj(m[3])};
}

std::array<double, 3> resolve_angles(const Gate& g, const double* theta, const double* x) {
  std::array<double, 3> out{};
  for (int j = 0; j < angle_count(g.kind); ++j) {
    const Angle& a = g.angles[j];
    switch (a.source) {
      case AngleSource::Constant: out[j] = a.value; break;
      case AngleSource::Param: out[j] = a.value * theta[a.index]; break;
      case AngleSource::Feature: out[j] = a.value * x[a.index]; break;
    }
  }
  return out;
}

bool is_per_sample(const Gate& g) {
  for (int j = 0; j < angle_count(g.kind); ++j)
    if (g.angles[j].source == AngleSource::Feature) return true;
  return false;
}

Gate make_gate(GateKind kind, int target, std::vector<Control> controls,
               std::array<Angle, 3> angles) {
  Gate g;
  g.kind = kind;
  g.target = target;
  g.controls = std::move(controls);
  g.angles = angles;
  return g;
}

void add_gate(Circuit& c, Gate g) {
  auto check_qubit = [&](int q) {
    if (q < 0 || q >= c.n_qubits)
      throw std::invalid_argument("gate " + std::string(gate_name(g.kind)) + ": qubit " +
                                  std::to_string(q) + " out of range [0, " +
                                  std::to_string(c.n_qubits) + ")");
  };
  std::vector<int> used{g.target};
  check_qubit(g.target);
  if (g.kind == GateKind::Swap) {
    check_qubit(g.target2);
    used.push_back(g.target2);
  }
  for (const Control& ctl : g.controls) {
    check_qubit(ctl.qubit);
    used.push_back(ctl.qubit);
  }
  std::sort(used.begin(), used.end());
  if (std::adjacent_find(used.begin(), used.end()) != used.end())
    throw std::invalid_argument("gate " + std::string(gate_name(g.kind)) +
                                ": a qubit appears twice among targets and controls");
  for (int j = 0; j < angle_count(g.kind); ++j) {
    const Angle& a = g.angles[j];
    if (a.source == AngleSource::Constant) continue;
    if (a.index < 0) throw std::invalid_argument("gate angle: negative parameter/feature index");
    if (!std::isfinite(a.value)) throw std::invalid_argument("gate angle: scale is not finite");
    int& count = a.source == AngleSource::Param ? c.n_params : c.n_features;
    count = std::max(count, a.index + 1);
  }
  c.gates.push_back(std::move(g));
}

std::vector<cplx> dense_gate_matrix(int n, const Gate& g, const double* angles) {
  const std::size_t dim = std::size_t(1) << n;
  std::vector<cplx> u(dim * dim, 0.0);
  const Mat2 m = gate_matrix(g.kind, angles, g.matrix);
  for (std::size_t col = 0; col < dim; ++col) {
    bool active = true;
    for (const Control& ctl : g.controls)
      if (((col >> ctl.qubit) & 1) != (ctl.on_one ? 1u : 0u)) active = false;
    if (!active) {
      u[col * dim + col] = 1.0;
      continue;
    }
    if (g.kind == GateKind::Swap) {
      std::size_t b0 = (col >> g.target) & 1, b1 = (col >> g.target2) & 1;
      std::size_t row = col & ~((std::size_t(1) << g.target) | (std::size_t(1) << g.target2));
      row |= (b1 << g.target) | (b0 << g.target2);
      u[row * dim + col] = 1.0;
      continue;
    }
    const std::size_t bit = (col >> g.target) & 1;
    const std::size_t r0 = col & ~(std::size_t(1) << g.target), r1 = r0 | (std::size_t(1) << g.target);
    u[r0 * dim + col] = m[0 * 2 + bit];
    u[r1 * dim + col] = m[1 * 2 + bit];
  }
  return u;
}

std::string describe(const Gate& g) {
  std::ostringstream os;
  os << gate_name(g.kind);
  const int na = angle_count(g.kind);
  if (na > 0) {
    os << '(';
    for (int j = 0; j < na; ++j) {
      const Angle& a = g.angles[j];
      if (j) os << ", ";
      if (a.source == AngleSource::Constant) {
        os << a.value;
      } else {
        if (a.value != 1.0) os << a.value << '*';
        os << (a.source == AngleSource::Param ? "theta[" : "x[") << a.index << ']';
      }
    }
    os << ')';
  }
  os << " q[" << g.target << ']';
  if (g.kind == GateKind::Swap) os << ", q[" << g.target2 << ']';
  for (const Control& ctl : g.controls) os << " ctrl q[" << ctl.qubit << "]=" << (ctl.on_one ? 1 : 0);
  return os.str();
}

}  // namespace qmoe
