// The OpenQASM writer (qasm.hpp: write_qasm and its helpers): a circuit, bound
// to parameters and one sample's features, as OpenQASM 2.0 text in qelib1.inc
// gates. The reader is qasm.cpp.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <unordered_map>

#include "circuit/qasm.hpp"

namespace qmoe {

U3Decomposition decompose_u3(const Mat2& u) {
  // U3 = [[c, -e^{il} s], [e^{ip} s, e^{i(p+l)} c]], c = cos(t/2) >= 0, s = sin(t/2) >= 0.
  U3Decomposition d;
  const double a00 = std::abs(u[0]), a10 = std::abs(u[2]);
  d.theta = 2 * std::atan2(a10, a00);
  if (a00 >= a10) {
    d.alpha = std::arg(u[0]);
    const double pl = std::arg(u[3]) - d.alpha;
    d.phi = a10 > 0 ? std::arg(u[2]) - d.alpha : 0.0;
    d.lambda = pl - d.phi;
  } else {
    const double A = std::arg(u[2]), B = std::arg(-u[1]);  // alpha+phi, alpha+lambda
    d.alpha = a00 > 0 ? A + B - std::arg(u[3]) : 0.0;
    d.phi = A - d.alpha;
    d.lambda = B - d.alpha;
  }
  return d;
}

Mat2 sqrt_unitary(const Mat2& u) {
  // sqrt(M) = (M + s I) / t with s = +-sqrt(det M), t = sqrt(tr M + 2 s)
  // (Cayley-Hamilton); pick the sign of s that keeps t away from zero.
  const cplx det = u[0] * u[3] - u[1] * u[2];
  const cplx tr = u[0] + u[3];
  cplx s = std::sqrt(det);
  cplx t2 = tr + 2.0 * s;
  if (std::abs(tr - 2.0 * s) > std::abs(t2)) {
    s = -s;
    t2 = tr + 2.0 * s;
  }
  const cplx t = std::sqrt(t2);
  return {(u[0] + s) / t, u[1] / t, u[2] / t, (u[3] + s) / t};
}

namespace {

std::string num(double v) {
  if (v == 0) return "0";  // also turns -0 into 0
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

bool near(const Mat2& a, const Mat2& b) {
  for (int k = 0; k < 4; ++k)
    if (std::abs(a[k] - b[k]) > 1e-14) return false;
  return true;
}

class Writer {
 public:
  std::ostringstream os;
  bool v3 = false;           // OpenQASM 3 (stdgates.inc names: cp for cu1, cu(t,p,l,0) for cu3)
  std::string indent;        // before every line

  std::string q(int i) const { return "q[" + std::to_string(i) + "]"; }

  void line(std::string g, std::vector<double> args, std::vector<int> qs) {
    if (v3 && g == "cu1") g = "cp";
    if (v3 && g == "cu3") g = "cu", args.push_back(0.0);
    os << indent << g;
    if (!args.empty()) {
      os << '(';
      for (std::size_t k = 0; k < args.size(); ++k) os << (k ? "," : "") << num(args[k]);
      os << ')';
    }
    for (std::size_t k = 0; k < qs.size(); ++k) os << (k ? ", " : " ") << q(qs[k]);
    os << ";\n";
  }

  // Any 2x2 unitary on an uncontrolled qubit (up to a global phase).
  void u(const Mat2& m, int t) {
    const U3Decomposition d = decompose_u3(m);
    line("u3", {d.theta, d.phi, d.lambda}, {t});
  }

  // Controlled-m exactly (phase included): u1(alpha) on the control, then cu3.
  void cu(const Mat2& m, int c, int t) {
    static const Mat2 X = gate_matrix(GateKind::X, nullptr), Y = gate_matrix(GateKind::Y, nullptr),
                      Z = gate_matrix(GateKind::Z, nullptr), H = gate_matrix(GateKind::H, nullptr);
    if (near(m, X)) return line("cx", {}, {c, t});
    if (near(m, Y)) return line("cy", {}, {c, t});
    if (near(m, Z)) return line("cz", {}, {c, t});
    if (near(m, H)) return line("ch", {}, {c, t});
    const U3Decomposition d = decompose_u3(m);
    if (std::abs(std::remainder(d.alpha, 2 * M_PI)) > 1e-15)
      line("u1", {std::remainder(d.alpha, 2 * M_PI)}, {c});
    line("cu3", {d.theta, d.phi, d.lambda}, {c, t});
  }

  // Multi-controlled m, controls all on |1> (Barenco et al. 1995, lemma 7.5):
  // C^k-U = C-V(c_k,t) C^{k-1}X(c_1..c_{k-1}; c_k) C-V^+(c_k,t) C^{k-1}X(..; c_k) C^{k-1}-V(c_1..c_{k-1}; t)
  // with V^2 = U.
  void mcu(const Mat2& m, const std::vector<int>& ctl, int t) {
    if (ctl.empty()) return u(m, t);
    if (ctl.size() == 1) return cu(m, ctl[0], t);
    static const Mat2 X = gate_matrix(GateKind::X, nullptr);
    if (ctl.size() == 2 && near(m, X)) return line("ccx", {}, {ctl[0], ctl[1], t});
    const Mat2 v = sqrt_unitary(m);
    const int last = ctl.back();
    const std::vector<int> rest(ctl.begin(), ctl.end() - 1);
    cu(v, last, t);
    mcu(X, rest, last);
    cu(dagger(v), last, t);
    mcu(X, rest, last);
    mcu(v, rest, t);
  }

  void gate(const Gate& g, const std::array<double, 3>& a) {
    for (const Control& c : g.controls)
      if (!c.on_one) line("x", {}, {c.qubit});
    std::vector<int> ctl;
    for (const Control& c : g.controls) ctl.push_back(c.qubit);
    body(g, a, ctl);
    for (const Control& c : g.controls)
      if (!c.on_one) line("x", {}, {c.qubit});
  }

  void body(const Gate& g, const std::array<double, 3>& a, const std::vector<int>& ctl) {
    const int t = g.target;
    if (g.kind == GateKind::Swap) {
      if (ctl.empty()) return line("swap", {}, {t, g.target2});
      // controlled swap = cx(b,a) C^{k+1}X(ctl, a; b) cx(b,a)
      std::vector<int> c2 = ctl;
      c2.push_back(t);
      line("cx", {}, {g.target2, t});
      mcu(gate_matrix(GateKind::X, nullptr), c2, g.target2);
      return line("cx", {}, {g.target2, t});
    }
    if (g.kind == GateKind::I) return line("id", {}, {t});
    if (ctl.empty()) {
      switch (g.kind) {
        case GateKind::H: case GateKind::X: case GateKind::Y: case GateKind::Z:
        case GateKind::S: case GateKind::Sdg: case GateKind::T: case GateKind::Tdg:
          return line(gate_name(g.kind), {}, {t});
        case GateKind::RX: case GateKind::RY: case GateKind::RZ: case GateKind::U1:
          return line(gate_name(g.kind), {a[0]}, {t});
        case GateKind::U2: return line("u2", {a[0], a[1]}, {t});
        case GateKind::U3: return line("u3", {a[0], a[1], a[2]}, {t});
        default: return u(gate_matrix(g.kind, a.data(), g.matrix), t);  // SX, Matrix
      }
    }
    if (ctl.size() == 1) {
      const int c = ctl[0];
      switch (g.kind) {
        case GateKind::RX: return line("crx", {a[0]}, {c, t});
        case GateKind::RY: return line("cry", {a[0]}, {c, t});
        case GateKind::RZ: return line("crz", {a[0]}, {c, t});
        case GateKind::U1: return line("cu1", {a[0]}, {c, t});
        case GateKind::S: return line("cu1", {M_PI / 2}, {c, t});
        case GateKind::Sdg: return line("cu1", {-M_PI / 2}, {c, t});
        case GateKind::T: return line("cu1", {M_PI / 4}, {c, t});
        case GateKind::Tdg: return line("cu1", {-M_PI / 4}, {c, t});
        case GateKind::U2: return line("cu3", {M_PI / 2, a[0], a[1]}, {c, t});
        case GateKind::U3: return line("cu3", {a[0], a[1], a[2]}, {c, t});
        default: break;
      }
    }
    mcu(gate_matrix(g.kind, a.data(), g.matrix), ctl, t);
  }
};

}  // namespace

namespace {

void check_writable(const Circuit& c, const std::vector<double>& theta, const double* x) {
  if (theta.size() < std::size_t(c.n_params))
    throw std::invalid_argument("write_qasm: circuit needs " + std::to_string(c.n_params) +
                                " parameters, got " + std::to_string(theta.size()));
  if (c.n_features > 0 && !x)
    throw std::invalid_argument("write_qasm: the circuit reads input features; pass one sample");
  if (c.n_qubits < 1) throw std::invalid_argument("write_qasm: circuit has no qubits");
}

void write_gates(Writer& w, const Circuit& c, const std::vector<double>& theta, const double* x) {
  for (const Gate& g : c.gates) {
    const std::array<double, 3> a = resolve_angles(g, theta.data(), x);
    for (int j = 0; j < angle_count(g.kind); ++j)
      if (!std::isfinite(a[std::size_t(j)]))
        throw std::invalid_argument("write_qasm: gate '" + describe(g) + "' has a non-finite angle");
    w.gate(g, a);
  }
}

}  // namespace

std::string write_qasm3_dynamic(const Circuit& pre, const std::vector<int>& measured,
                                const std::vector<Circuit>& branches, const std::vector<double>& theta,
                                const double* x, const std::string& comment) {
  check_writable(pre, theta, x);
  const int n = pre.n_qubits, r = int(measured.size());
  if (r < 1 || r > 30 || branches.size() != (std::size_t(1) << r))
    throw std::invalid_argument("write_qasm3_dynamic: need 2^r branches for r measured qubits");
  Writer w;
  w.v3 = true;
  if (!comment.empty()) {
    std::istringstream in(comment);
    for (std::string l; std::getline(in, l);) w.os << "// " << l << '\n';
  }
  w.os << "OPENQASM 3.0;\ninclude \"stdgates.inc\";\nqubit[" << n << "] q;\nbit[" << r << "] route;\nbit[" << n
       << "] c;\n";
  write_gates(w, pre, theta, x);
  for (int i = 0; i < r; ++i) w.os << "route[" << i << "] = measure q[" << measured[std::size_t(i)] << "];\n";
  w.indent = "  ";
  for (std::size_t k = 0; k < branches.size(); ++k) {
    check_writable(branches[k], theta, x);
    if (branches[k].n_qubits != n) throw std::invalid_argument("write_qasm3_dynamic: a branch has another register size");
    if (branches[k].gates.empty()) continue;
    w.os << "if (route == " << k << ") {\n";
    write_gates(w, branches[k], theta, x);
    w.os << "}\n";
  }
  w.indent.clear();
  w.os << "c = measure q;\n";
  return w.os.str();
}

std::string write_qasm(const Circuit& c, const std::vector<double>& theta, const double* x,
                       const QasmWriteOptions& opt) {
  check_writable(c, theta, x);
  Writer w;
  if (!opt.comment.empty()) {
    std::istringstream in(opt.comment);
    for (std::string l; std::getline(in, l);) w.os << "// " << l << '\n';
  }
  w.os << "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[" << c.n_qubits << "];\n";
  if (opt.measure) w.os << "creg c[" << c.n_qubits << "];\n";
  write_gates(w, c, theta, x);
  if (opt.measure) w.os << "measure q -> c;\n";
  return w.os.str();
}

}  // namespace qmoe
