// OpenQASM 2.0 reader / writer tests.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <complex>
#include <cstdio>
#include <fstream>
#include <map>
#include <omp.h>
#include <sstream>
#include <random>
#include <string>
#include <vector>

#include "circuit/circuit.hpp"
#include "circuit/execute.hpp"
#include "circuit/qasm.hpp"
#include "circuit/qasm_dynamic.hpp"
#include "grad/adjoint.hpp"
#include "grad/param_shift.hpp"
#include "sim/state.hpp"

namespace qmoe {
namespace {

const std::string kHead = "OPENQASM 2.0;\ninclude \"qelib1.inc\";\n";

using DenseMat = std::vector<cplx>;  // row-major dim x dim

DenseMat identity(std::size_t dim) {
  DenseMat m(dim * dim, 0.0);
  for (std::size_t i = 0; i < dim; ++i) m[i * dim + i] = 1.0;
  return m;
}

DenseMat matmul(const DenseMat& a, const DenseMat& b, std::size_t dim) {
  DenseMat c(dim * dim, 0.0);
  for (std::size_t i = 0; i < dim; ++i)
    for (std::size_t k = 0; k < dim; ++k) {
      const cplx aik = a[i * dim + k];
      if (aik == 0.0) continue;
      for (std::size_t j = 0; j < dim; ++j) c[i * dim + j] += aik * b[k * dim + j];
    }
  return c;
}

// Unitary of a circuit as the product of its dense gate matrices.
DenseMat unitary(const Circuit& c, const std::vector<double>& theta) {
  const std::size_t dim = std::size_t(1) << c.n_qubits;
  DenseMat u = identity(dim);
  for (const Gate& g : c.gates) {
    const auto a = resolve_angles(g, theta.data(), nullptr);
    u = matmul(dense_gate_matrix(c.n_qubits, g, a.data()), u, dim);
  }
  return u;
}

// max |a - e^{i phi} b| with the phase fixed by the largest entry of b.
double distance(const std::vector<cplx>& a, const std::vector<cplx>& b, bool up_to_phase) {
  cplx ph = 1.0;
  if (up_to_phase) {
    std::size_t k = 0;
    for (std::size_t i = 0; i < b.size(); ++i)
      if (std::abs(b[i]) > std::abs(b[k])) k = i;
    ph = a[k] / b[k];
    ph /= std::abs(ph);
  }
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - ph * b[i]));
  return d;
}

std::vector<cplx> simulate(const Circuit& c, const std::vector<double>& theta,
                           const double* x = nullptr) {
  auto s = sim::make_state<double>(c.n_qubits, 1);
  GateScratch<double> scratch;
  scratch.reserve(1);
  run_circuit(c, theta.data(), x, s, scratch);
  std::vector<cplx> v(s.dim());
  for (std::size_t i = 0; i < s.dim(); ++i) v[i] = {s.re[i], s.im[i]};
  return v;
}

ParsedQasm parse(const std::string& body) { return parse_qasm(kHead + body); }

// ---- accepted constructs ------------------------------------------------------

TEST(QasmParse, MinimalAndComments) {
  ParsedQasm p = parse_qasm(
      "// leading comment\nOPENQASM 2.0; // header\ninclude \"qelib1.inc\";\n"
      "qreg q[2]; creg c[2];\n/* block\ncomment */ h q[0]; // trailing\n"
      "cx q[0],q[1];\nbarrier q;\nbarrier q[0], q[1];\nmeasure q[0] -> c[0];\nmeasure q -> c;\n");
  EXPECT_EQ(p.circuit.n_qubits, 2);
  ASSERT_EQ(p.circuit.gates.size(), 2u);
  EXPECT_EQ(p.circuit.gates[0].kind, GateKind::H);
  EXPECT_EQ(p.circuit.gates[1].kind, GateKind::X);
  ASSERT_EQ(p.circuit.gates[1].controls.size(), 1u);
  EXPECT_EQ(p.circuit.gates[1].controls[0].qubit, 0);
  EXPECT_EQ(p.circuit.gates[1].target, 1);
  ASSERT_EQ(p.qregs.size(), 1u);
  ASSERT_EQ(p.cregs.size(), 1u);
  EXPECT_EQ(p.cregs[0].name, "c");
  EXPECT_TRUE(p.theta.empty());
  EXPECT_EQ(p.circuit.n_params, 0);
}

TEST(QasmParse, BuiltinsWithoutInclude) {
  ParsedQasm p = parse_qasm("OPENQASM 2.0;\nqreg q[2];\nU(0.1,0.2,0.3) q[0];\nCX q[0],q[1];\n");
  ASSERT_EQ(p.circuit.gates.size(), 2u);
  EXPECT_EQ(p.circuit.gates[0].kind, GateKind::U3);
  EXPECT_EQ(p.theta, (std::vector<double>{0.1, 0.2, 0.3}));
}

TEST(QasmParse, SeveralRegistersNumberedInOrder) {
  ParsedQasm p = parse("qreg a[2];\ncreg c[3];\nqreg b[3];\nx b[1];\ncx a[1], b[2];\n");
  EXPECT_EQ(p.circuit.n_qubits, 5);
  ASSERT_EQ(p.qregs.size(), 2u);
  EXPECT_EQ(p.qregs[1].name, "b");
  EXPECT_EQ(p.qregs[1].offset, 2);
  EXPECT_EQ(p.circuit.gates[0].target, 3);
  EXPECT_EQ(p.circuit.gates[1].controls[0].qubit, 1);
  EXPECT_EQ(p.circuit.gates[1].target, 4);
}

TEST(QasmParse, Broadcasting) {
  ParsedQasm p = parse("qreg a[3];\nqreg b[3];\nh a;\ncx a, b;\ncx a[0], b;\nrx(0.5) b;\n");
  const auto& g = p.circuit.gates;
  ASSERT_EQ(g.size(), 12u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(g[i].kind, GateKind::H);
    EXPECT_EQ(g[i].target, i);
    EXPECT_EQ(g[3 + i].controls[0].qubit, i);
    EXPECT_EQ(g[3 + i].target, 3 + i);
    EXPECT_EQ(g[6 + i].controls[0].qubit, 0);
    EXPECT_EQ(g[6 + i].target, 3 + i);
    // one argument in the text: the broadcast copies share parameter 0
    EXPECT_EQ(g[9 + i].angles[0].source, AngleSource::Param);
    EXPECT_EQ(g[9 + i].angles[0].index, 0);
  }
  EXPECT_EQ(p.theta, std::vector<double>{0.5});
}

TEST(QasmParse, ParametersInTextualOrder) {
  ParsedQasm p = parse("qreg q[2];\nrx(0.1) q[0];\nu3(1,2,3) q[1];\nh q[0];\ncu1(-4) q[0],q[1];\nu2(5,6) q[0];\n");
  EXPECT_EQ(p.theta, (std::vector<double>{0.1, 1, 2, 3, -4, 5, 6}));
  EXPECT_EQ(p.circuit.n_params, 7);
  const auto& g = p.circuit.gates;
  EXPECT_EQ(g[1].angles[2].index, 3);
  EXPECT_EQ(g[3].angles[0].index, 4);
  EXPECT_EQ(g[4].angles[1].index, 6);
}

TEST(QasmParse, Expressions) {
  const std::vector<std::pair<std::string, double>> cases = {
      {"pi", M_PI},
      {"1e-3", 1e-3},
      {".5", 0.5},
      {"5.", 5.0},
      {"2.5E+2", 250},
      {"-pi/2", -M_PI / 2},
      {"1+2*3", 7},
      {"(1+2)*3", 9},
      {"2^3^2", 512},
      {"-2^2", -4},
      {"2^-1", 0.5},
      {"--1", 1},
      {"+3", 3},
      {"10-4-3", 3},
      {"12/4/3", 1},
      {"sin(pi/6)", 0.5},
      {"cos(0)", 1},
      {"tan(pi/4)", 1},
      {"exp(1)", std::exp(1.0)},
      {"ln(exp(2))", 2},
      {"sqrt(2)*sqrt(2)", 2},
      {"3*pi/4 - (1/2)^2", 3 * M_PI / 4 - 0.25},
      {"0007", 7},
  };
  for (const auto& [e, v] : cases) {
    ParsedQasm p = parse("qreg q[1];\nrz(" + e + ") q[0];\n");
    ASSERT_EQ(p.theta.size(), 1u) << e;
    EXPECT_NEAR(p.theta[0], v, 1e-12) << e;
  }
}

// ---- gate semantics -----------------------------------------------------------

// Each gate against its qelib1.inc definition (or another independent
// identity) written with other gates; `exact`: equal including global phase.
struct Identity {
  std::string lhs, rhs;
  bool exact;
  int n = 3;
};

TEST(QasmGates, QelibDefinitions) {
  const double a = 0.7, b = -1.3, c = 2.1;
  auto fmt = [](double v) { char buf[40]; std::snprintf(buf, sizeof buf, "%.17g", v); return std::string(buf); };
  const std::string A = fmt(a), B = fmt(b), C = fmt(c);
  const std::vector<Identity> ids = {
      {"u3(" + A + "," + B + "," + C + ") q[0];", "U(" + A + "," + B + "," + C + ") q[0];", true},
      {"u2(" + A + "," + B + ") q[0];", "u3(pi/2," + A + "," + B + ") q[0];", true},
      {"u1(" + A + ") q[0];", "u3(0,0," + A + ") q[0];", true},
      {"p(" + A + ") q[0];", "u1(" + A + ") q[0];", true},
      {"u(" + A + "," + B + "," + C + ") q[0];", "u3(" + A + "," + B + "," + C + ") q[0];", true},
      {"u0(" + A + ") q[0];", "id q[0];", true},
      {"cx q[0],q[1];", "CX q[0],q[1];", true},
      {"id q[0];", "u3(0,0,0) q[0];", true},
      {"x q[0];", "u3(pi,0,pi) q[0];", true},
      {"y q[0];", "u3(pi,pi/2,pi/2) q[0];", true},
      {"z q[0];", "u1(pi) q[0];", true},
      {"h q[0];", "u2(0,pi) q[0];", true},
      {"s q[0];", "u1(pi/2) q[0];", true},
      {"sdg q[0];", "u1(-pi/2) q[0];", true},
      {"t q[0];", "u1(pi/4) q[0];", true},
      {"tdg q[0];", "u1(-pi/4) q[0];", true},
      {"sx q[0];", "sdg q[0]; h q[0]; sdg q[0];", false},
      {"sx q[0]; sx q[0];", "x q[0];", true},
      {"sxdg q[0];", "s q[0]; h q[0]; s q[0];", false},
      {"sxdg q[0]; sx q[0];", "id q[0];", true},
      {"rx(" + A + ") q[0];", "u3(" + A + ",-pi/2,pi/2) q[0];", true},
      {"ry(" + A + ") q[0];", "u3(" + A + ",0,0) q[0];", true},
      {"rz(" + A + ") q[0];", "u1(" + A + ") q[0];", false},
      {"rz(" + A + ") q[0];", "u1(" + A + "/2) q[0]; x q[0]; u1(-" + A + "/2) q[0]; x q[0];", true},
      {"cz q[0],q[1];", "h q[1]; cx q[0],q[1]; h q[1];", true},
      {"cy q[0],q[1];", "sdg q[1]; cx q[0],q[1]; s q[1];", true},
      {"ch q[0],q[1];", "h q[1]; sdg q[1]; cx q[0],q[1]; h q[1]; t q[1]; cx q[0],q[1]; t q[1]; h q[1];"
                        " s q[1]; x q[1]; s q[0];", false},  // qelib1 ch carries a global phase e^{i pi/4}
      {"ccx q[0],q[1],q[2];", "h q[2]; cx q[1],q[2]; tdg q[2]; cx q[0],q[2]; t q[2]; cx q[1],q[2];"
                              " tdg q[2]; cx q[0],q[2]; t q[1]; t q[2]; h q[2]; cx q[0],q[1];"
                              " t q[0]; tdg q[1]; cx q[0],q[1];", true},
      {"crz(" + A + ") q[0],q[1];", "u1(" + A + "/2) q[1]; cx q[0],q[1]; u1(-" + A + "/2) q[1]; cx q[0],q[1];", true},
      {"cu1(" + A + ") q[0],q[1];", "u1(" + A + "/2) q[0]; cx q[0],q[1]; u1(-" + A + "/2) q[1];"
                                    " cx q[0],q[1]; u1(" + A + "/2) q[1];", true},
      {"cp(" + A + ") q[0],q[1];", "cu1(" + A + ") q[0],q[1];", true},
      {"cu3(" + A + "," + B + "," + C + ") q[0],q[1];",
       "u1((" + C + "+" + B + ")/2) q[0]; u1((" + C + "-" + B + ")/2) q[1]; cx q[0],q[1];"
       " u3(-" + A + "/2,0,-(" + B + "+" + C + ")/2) q[1]; cx q[0],q[1]; u3(" + A + "/2," + B + ",0) q[1];", true},
      {"cu(" + A + "," + B + "," + C + ",0.4) q[0],q[1];",
       "p(0.4) q[0]; cu3(" + A + "," + B + "," + C + ") q[0],q[1];", true},
      {"crx(" + A + ") q[0],q[1];", "u1(pi/2) q[1]; cx q[0],q[1]; u3(-" + A + "/2,0,0) q[1]; cx q[0],q[1];"
                                    " u3(" + A + "/2,-pi/2,0) q[1];", true},
      {"cry(" + A + ") q[0],q[1];", "ry(" + A + "/2) q[1]; cx q[0],q[1]; ry(-" + A + "/2) q[1]; cx q[0],q[1];", true},
      {"csx q[0],q[1];", "h q[1]; cu1(pi/2) q[0],q[1]; h q[1];", true},
      {"swap q[0],q[1];", "cx q[0],q[1]; cx q[1],q[0]; cx q[0],q[1];", true},
      {"cswap q[0],q[1],q[2];", "cx q[2],q[1]; ccx q[0],q[1],q[2]; cx q[2],q[1];", true},
      {"rzz(" + A + ") q[0],q[1];", "cx q[0],q[1]; u1(" + A + ") q[1]; cx q[0],q[1];", false},
      {"rccx q[0],q[1],q[2];", "u2(0,pi) q[2]; u1(pi/4) q[2]; cx q[1],q[2]; u1(-pi/4) q[2]; cx q[0],q[2];"
                               " u1(pi/4) q[2]; cx q[1],q[2]; u1(-pi/4) q[2]; u2(0,pi) q[2];", true},
      {"rc3x q[0],q[1],q[2],q[3];", "u2(0,pi) q[3]; u1(pi/4) q[3]; cx q[2],q[3]; u1(-pi/4) q[3]; u2(0,pi) q[3];"
       " cx q[0],q[3]; u1(pi/4) q[3]; cx q[1],q[3]; u1(-pi/4) q[3]; cx q[0],q[3]; u1(pi/4) q[3]; cx q[1],q[3];"
       " u1(-pi/4) q[3]; u2(0,pi) q[3]; u1(pi/4) q[3]; cx q[2],q[3]; u1(-pi/4) q[3]; u2(0,pi) q[3];", true, 4},
      // Gray code: 4abc = a+b+c-(a^b)-(b^c)-(a^c)+(a^b^c); H u1(pi) H = X
      {"c3x q[0],q[1],q[2],q[3];", "h q[3]; cu1(pi/4) q[0],q[3]; h q[3]; cx q[0],q[1]; h q[3];"
       " cu1(-pi/4) q[1],q[3]; h q[3]; cx q[0],q[1]; h q[3]; cu1(pi/4) q[1],q[3]; h q[3]; cx q[1],q[2];"
       " h q[3]; cu1(-pi/4) q[2],q[3]; h q[3]; cx q[0],q[2]; h q[3]; cu1(pi/4) q[2],q[3]; h q[3];"
       " cx q[1],q[2]; h q[3]; cu1(-pi/4) q[2],q[3]; h q[3]; cx q[0],q[2]; h q[3]; cu1(pi/4) q[2],q[3];"
       " h q[3];", true, 4},
      {"c3sqrtx q[0],q[1],q[2],q[3];", "h q[3]; cu1(pi/8) q[0],q[3]; h q[3]; cx q[0],q[1]; h q[3];"
       " cu1(-pi/8) q[1],q[3]; h q[3]; cx q[0],q[1]; h q[3]; cu1(pi/8) q[1],q[3]; h q[3]; cx q[1],q[2];"
       " h q[3]; cu1(-pi/8) q[2],q[3]; h q[3]; cx q[0],q[2]; h q[3]; cu1(pi/8) q[2],q[3]; h q[3];"
       " cx q[1],q[2]; h q[3]; cu1(-pi/8) q[2],q[3]; h q[3]; cx q[0],q[2]; h q[3]; cu1(pi/8) q[2],q[3];"
       " h q[3];", true, 4},
      {"c4x q[0],q[1],q[2],q[3],q[4];", "h q[4]; cu1(pi/2) q[3],q[4]; h q[4]; c3x q[0],q[1],q[2],q[3];"
       " h q[4]; cu1(-pi/2) q[3],q[4]; h q[4]; c3x q[0],q[1],q[2],q[3]; c3sqrtx q[0],q[1],q[2],q[4];", true, 5},
  };
  for (const Identity& id : ids) {
    const std::string reg = "qreg q[" + std::to_string(id.n) + "];\n";
    ParsedQasm l = parse(reg + id.lhs + "\n"), r = parse(reg + id.rhs + "\n");
    const DenseMat ul = unitary(l.circuit, l.theta), ur = unitary(r.circuit, r.theta);
    EXPECT_LT(distance(ul, ur, !id.exact), 1e-12) << id.lhs << "  vs  " << id.rhs;
    // and the simulator agrees with the dense product (its first column)
    std::vector<cplx> col(std::size_t(1) << id.n);
    for (std::size_t i = 0; i < col.size(); ++i) col[i] = ul[i * col.size()];
    EXPECT_LT(distance(simulate(l.circuit, l.theta), col, false), 1e-12) << id.lhs;
  }
}

// Matrices written out by hand (independent of gate_matrix).
TEST(QasmGates, ExplicitMatrices) {
  const double t = 0.9, p = -0.4, l = 1.7;
  const cplx I1(0, 1);
  const double c = std::cos(t / 2), s = std::sin(t / 2);
  // cu3 q[0],q[1]: controlled [[c, -e^{il}s], [e^{ip}s, e^{i(p+l)}c]] (qubit 0 = control = low bit)
  ParsedQasm q = parse("qreg q[2];\ncu3(0.9,-0.4,1.7) q[0],q[1];\n");
  DenseMat u = unitary(q.circuit, q.theta);
  DenseMat want = identity(4);
  // basis index = q0 + 2 q1; control active on indices 1 (q1=0) and 3 (q1=1)
  want[1 * 4 + 1] = c;
  want[1 * 4 + 3] = -std::exp(I1 * l) * s;
  want[3 * 4 + 1] = std::exp(I1 * p) * s;
  want[3 * 4 + 3] = std::exp(I1 * (p + l)) * c;
  EXPECT_LT(distance(u, want, false), 1e-14);
  // crx: controlled exp(-i t X / 2)
  q = parse("qreg q[2];\ncrx(0.9) q[1],q[0];\n");
  u = unitary(q.circuit, q.theta);
  want = identity(4);  // control q1: indices 2 (q0=0), 3 (q0=1)
  want[2 * 4 + 2] = c;
  want[2 * 4 + 3] = -I1 * s;
  want[3 * 4 + 2] = -I1 * s;
  want[3 * 4 + 3] = c;
  EXPECT_LT(distance(u, want, false), 1e-14);
  // rzz: diag(e^{-it/2}, e^{it/2}, e^{it/2}, e^{-it/2})
  q = parse("qreg q[2];\nrzz(0.9) q[0],q[1];\n");
  u = unitary(q.circuit, q.theta);
  want = DenseMat(16, 0.0);
  for (int i = 0; i < 4; ++i) want[i * 4 + i] = std::exp(-I1 * t / 2.0 * double((i == 0 || i == 3) ? 1 : -1));
  EXPECT_LT(distance(u, want, false), 1e-14);
  // rxx = cos(t/2) I - i sin(t/2) X(x)X
  q = parse("qreg q[2];\nrxx(0.9) q[0],q[1];\n");
  u = unitary(q.circuit, q.theta);
  want = DenseMat(16, 0.0);
  for (int i = 0; i < 4; ++i) {
    want[i * 4 + i] = c;
    want[i * 4 + (3 - i)] = -I1 * s;
  }
  EXPECT_LT(distance(u, want, false), 1e-14);
  // c4x: permutation flipping q4 when q0..q3 are all 1
  q = parse("qreg q[5];\nc4x q[0],q[1],q[2],q[3],q[4];\n");
  u = unitary(q.circuit, q.theta);
  want = DenseMat(32 * 32, 0.0);
  for (int col = 0; col < 32; ++col) want[std::size_t((((col & 15) == 15) ? col ^ 16 : col) * 32 + col)] = 1.0;
  EXPECT_LT(distance(u, want, false), 1e-14);
  (void)p;
}

// ---- errors ---------------------------------------------------------------------

struct BadCase {
  std::string text;
  int line, col;
  std::string msg;  // substring of the message
};

TEST(QasmErrors, PositionsAndMessages) {
  const std::string H = "OPENQASM 2.0;\ninclude \"qelib1.inc\";\n";  // lines 1-2
  const std::vector<BadCase> cases = {
      {"", 1, 1, "missing header"},
      {"qreg q[1];", 1, 1, "missing header"},
      {"OPENQASM 3.0;", 1, 10, "only 2.0"},
      {"OPENQASM 2.0", 1, 13, "expected ';'"},
      {"OPENQASM 2.0;\nOPENQASM 2.0;", 2, 1, "duplicate OPENQASM"},
      {H + "qreg q[2];\nx q[0]", 4, 7, "expected ';'"},
      {H + "qreg q[2];\nh q[2];", 4, 5, "out of range"},
      {H + "qreg q[2];\nfoo q[0];", 4, 1, "unknown gate 'foo'"},
      {H + "qreg q[2];\ncx q[0];", 4, 8, "takes 2 qubit argument(s), got 1"},
      {H + "qreg q[3];\nh q[0], q[1];", 4, 9, "takes 1 qubit argument(s), got 2"},
      {H + "qreg q[2];\nrx q[0];", 4, 4, "takes 1 parameter(s)"},
      {H + "qreg q[2];\nrx(1,2) q[0];", 4, 3, "takes 1 parameter(s), got 2"},
      {H + "qreg q[2];\nh(1) q[0];", 4, 2, "takes 0 parameter(s), got 1"},
      {H + "qreg q[2];\ncx q[1], q[1];", 4, 10, "qubit used twice"},
      {H + "qreg q[2];\nccx q[0], q[1], q[0];", 4, 17, "qubit used twice"},
      {H + "qreg q[2];\ncx q, q;", 4, 7, "qubit used twice"},
      {H + "qreg a[2];\nqreg b[3];\ncx a, b;", 5, 7, "differ in size"},
      {H + "qreg q[2];\nh r[0];", 4, 3, "unknown quantum register 'r'"},
      {H + "qreg q[2];\ncreg c[2];\nh c[0];", 5, 3, "is a classical register"},
      {H + "qreg q[2];\nqreg q[1];", 4, 6, "already declared"},
      {H + "qreg q[0];", 3, 8, "at least one"},
      {H + "qreg q[31];", 3, 8, "too large"},
      {H + "qreg a[20];\nqreg b[20];", 4, 8, "too many qubits"},
      {H + "qreg q[99999999999999999999];", 3, 8, "too large"},
      {H + "qreg q[1.5];", 3, 8, "expected a register size"},
      {H + "qreg q[2];\ncreg c[2];\nreset c[0];", 5, 7, "is a classical register"},
      {H + "qreg q[2];\nreset q[2];", 4, 9, "out of range"},
      {H + "qreg q[2];\nreset q[0]", 4, 11, "expected ';'"},
      {H + "qreg q[2];\ncreg c[2];\nif(c[0]==1) x q[0];", 5, 5, "not one bit"},
      {H + "qreg q[2];\ncreg c[2];\nif(q==1) x q[0];", 5, 4, "is a quantum register"},
      {H + "qreg q[2];\ncreg c[2];\nif(d==1) x q[0];", 5, 4, "unknown classical register 'd'"},
      {H + "qreg q[2];\ncreg c[2];\nif(c==-1) x q[0];", 5, 7, "non-negative integer"},
      {H + "qreg q[2];\ncreg c[2];\nif(c==1.0) x q[0];", 5, 7, "non-negative integer"},
      {H + "qreg q[2];\ncreg c[2];\nif(c==18446744073709551616) x q[0];", 5, 7, "too large"},
      {H + "qreg q[2];\ncreg c[2];\nif(c=1) x q[0];", 5, 5, "unexpected character '='"},
      {H + "qreg q[2];\ncreg c[2];\nif(c!=1) x q[0];", 5, 5, "unexpected character '!'"},
      {H + "qreg q[2];\ncreg c[2];\nif c==1 x q[0];", 5, 4, "expected '('"},
      {H + "qreg q[2];\ncreg c[2];\nif(c==1 x q[0];", 5, 9, "expected ')'"},
      {H + "qreg q[2];\ncreg c[2];\nif(c==1) barrier q;", 5, 10, "expected a gate call, measure or reset"},
      {H + "qreg q[2];\ncreg c[2];\nif(c==1) if(c==0) x q[0];", 5, 10, "expected a gate call, measure or reset"},
      {H + "qreg q[2];\ncreg c[2];\nif(c==1) creg d[1];", 5, 10, "expected a gate call, measure or reset"},
      {H + "qreg q[2];\ncreg c[2];\nif(c==1) ;", 5, 10, "expected a gate call, measure or reset"},
      {H + "qreg q[2];\ncreg c[2];\nif(c==1) foo q[0];", 5, 10, "unknown gate 'foo'"},
      {H + "qreg q[2];\ncreg c[2];\nif(c==1) cx q[0], q[0];", 5, 19, "qubit used twice"},
      {H + "qreg q[2];\ncreg c[2];\nif(c==1) measure q[0] -> c;", 5, 18, "both"},
      {H + "qreg q[2];\ncreg c[2];\nif(c==1) reset c;", 5, 16, "is a classical register"},
      {H + "qreg q[1];\ncreg c[1];\ngate g a {\n  measure a -> c[0];\n}\ng q[0];", 6, 3, "not allowed in a gate body"},
      {H + "qreg q[1];\ngate g a {\n  reset a[0];\n}\ng q[0];", 5, 10, "without an index"},
      {H + "qreg q[1];\ncreg c[1];\ngate g a {\n  if(c==1) x a;\n}\ng q[0];", 6, 3, "not allowed in a gate body"},
      {H + "opaque foo a;", 3, 1, "opaque gate 'foo' has no definition"},
      {H + "gate x a { h a; }", 3, 6, "gate 'x' is already defined"},
      {H + "gate g(t) a, t { h a; }", 3, 14, "'t' is declared twice"},
      {H + "gate g a { h a;", 3, 16, "missing '}'"},
      {H + "qreg q[1];\ngate g a {\n  h b;\n}\ng q[0];", 5, 5, "unknown qubit 'b' in a gate body"},
      {H + "qreg q[1];\ngate g a {\n  h a[0];\n}\ng q[0];", 5, 6, "without an index"},
      {H + "qreg q[1];\ngate g(t) a {\n  rx(s) a;\n}\ng(1) q[0];", 5, 6, "unknown identifier 's'"},
      {H + "qreg q[1];\ngate g a {\n  qreg r[1];\n}\ng q[0];", 5, 3, "not allowed in a gate body"},
      {H + "qreg q[2];\ngate g a, b { cx a, b; }\ng q[0];", 5, 7, "takes 2 qubit argument(s), got 1"},
      {H + "qreg q[2];\ngate g(t) a { rx(t) a; }\ng q[0];", 5, 3, "takes 1 parameter(s)"},
      {"OPENQASM 2.0;\nqreg q[1];\nh q[0];", 3, 1, "needs 'include \"qelib1.inc\";'"},
      {"OPENQASM 2.0;\ninclude \"other.inc\";", 2, 9, "only \"qelib1.inc\""},
      {"OPENQASM 2.0;\ninclude \"qelib1.inc;", 2, 9, "unterminated string"},
      {H + "qreg q[1];\nrz(1/0) q[0];", 4, 4, "finite"},
      {H + "qreg q[1];\nrz(ln(0)) q[0];", 4, 4, "finite"},
      {H + "qreg q[1];\nrz(sqrt(-1)) q[0];", 4, 4, "finite"},
      {H + "qreg q[1];\nrz(1e999) q[0];", 4, 4, "finite"},
      {H + "qreg q[1];\nrz(theta) q[0];", 4, 4, "unknown identifier 'theta'"},
      {H + "qreg q[1];\nrz(1+) q[0];", 4, 6, "expected an expression"},
      {H + "qreg q[1];\nrz(sin 1) q[0];", 4, 8, "expected '('"},
      {H + "qreg q[1];\nrz((1) q[0];", 4, 8, "expected ',' or ')'"},
      {H + "qreg q[1];\nrz(1e) q[0];", 4, 5, "exponent"},
      {H + "qreg q[1];\nrz(12abc) q[0];", 4, 6, "malformed number"},
      {H + "qreg q[1];\nrz(1) q[0];\n  $", 5, 3, "unexpected character '$'"},
      {H + "qreg q[1];\n\x01", 4, 1, "unexpected byte 0x01"},
      {H + "qreg q[1];\n/* open", 4, 1, "unterminated comment"},
      {H + "qreg q[2];\ncreg c[1];\nmeasure q -> c;", 5, 14, "differ in size"},
      {H + "qreg q[2];\ncreg c[2];\nmeasure q[0] -> c;", 5, 9, "both"},
      {H + "qreg q[2];\ncreg c[2];\nmeasure q[0] c[0];", 5, 14, "expected '->'"},
      {H + "qreg q[2];\nbarrier;", 4, 8, "expected a qubit"},
      {H + "qreg q[2];\nh q[0]", 4, 7, "expected ';', found end of file"},
      {H + "qreg q[2];\n;", 4, 1, "expected a statement"},
      {H + "qreg q[2];\nh q[0]\ncx q[0],q[1];", 4, 7, "expected ';' after ']'"},
      {H + "qreg q[2];\nh q[0] // comment\n\n  x q[1];", 4, 7, "expected ';' after ']' (found 'x' on line 6)"},
      {H + "qreg q[2];\nh q[0]\n", 4, 7, "expected ';' after ']'"},
      {H + "qreg q[2] h q[0];", 3, 11, "expected ';', found 'h'"},
      {H + "qreg pi[2];", 3, 6, "reserved"},
      {H + "qreg q[1];\nrz(" + std::string(300, '(') + "1" + std::string(300, ')') + ") q[0];", 4, 0, "nested too deeply"},
      {H + "qreg q[1];\nrz(" + std::string(300, '-') + "1) q[0];", 4, 0, "nested too deeply"},
      {H + "qreg q[1];\nrz(" + std::string(kQasmMaxDepth, '(') + "1" + std::string(kQasmMaxDepth, ')') + ") q[0];", 4, 0, "nested too deeply"},
  };
  for (const BadCase& bc : cases) {
    try {
      parse_qasm(bc.text);
      ADD_FAILURE() << "accepted: " << bc.text;
    } catch (const QasmError& e) {
      EXPECT_EQ(e.line(), bc.line) << bc.text << "\n" << e.what();
      if (bc.col > 0) {
        EXPECT_EQ(e.column(), bc.col) << bc.text << "\n" << e.what();
      }
      EXPECT_NE(e.message().find(bc.msg), std::string::npos) << bc.text << "\n" << e.what();
      EXPECT_EQ(std::string(e.what()), "line " + std::to_string(e.line()) + ", column " +
                                           std::to_string(e.column()) + ": " + e.message());
    }
  }
}

// ---- writer -----------------------------------------------------------------------

TEST(QasmWriter, DecomposeU3AndSqrt) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> U(-M_PI, M_PI);
  std::vector<Mat2> ms;
  for (int k = 0; k < 200; ++k) {
    const double a[3] = {U(rng), U(rng), U(rng)};
    Mat2 m = gate_matrix(GateKind::U3, a);
    const cplx ph = std::polar(1.0, U(rng));
    for (auto& e : m) e *= ph;
    ms.push_back(m);
  }
  for (GateKind k : {GateKind::I, GateKind::H, GateKind::X, GateKind::Y, GateKind::Z, GateKind::S,
                     GateKind::Sdg, GateKind::T, GateKind::Tdg, GateKind::SX})
    ms.push_back(gate_matrix(k, nullptr));
  ms.push_back({-1.0, 0, 0, -1.0});
  ms.push_back({0, cplx(0, 1), cplx(0, 1), 0});
  for (const Mat2& m : ms) {
    const U3Decomposition d = decompose_u3(m);
    const double a[3] = {d.theta, d.phi, d.lambda};
    Mat2 r = gate_matrix(GateKind::U3, a);
    for (int e = 0; e < 4; ++e)
      EXPECT_LT(std::abs(std::polar(1.0, d.alpha) * r[e] - m[e]), 1e-13);
    const Mat2 v = sqrt_unitary(m);
    const Mat2 vv = {v[0] * v[0] + v[1] * v[2], v[0] * v[1] + v[1] * v[3],
                     v[2] * v[0] + v[3] * v[2], v[2] * v[1] + v[3] * v[3]};
    for (int e = 0; e < 4; ++e) EXPECT_LT(std::abs(vv[e] - m[e]), 1e-13);
    // V is unitary
    const Mat2 vd = dagger(v);
    const Mat2 p = {vd[0] * v[0] + vd[1] * v[2], vd[0] * v[1] + vd[1] * v[3],
                    vd[2] * v[0] + vd[3] * v[2], vd[2] * v[1] + vd[3] * v[3]};
    EXPECT_LT(std::abs(p[0] - 1.0) + std::abs(p[1]) + std::abs(p[2]) + std::abs(p[3] - 1.0), 1e-13);
  }
}

Mat2 random_unitary(std::mt19937_64& rng) {
  std::uniform_real_distribution<double> U(-M_PI, M_PI);
  const double a[3] = {U(rng), U(rng), U(rng)};
  Mat2 m = gate_matrix(GateKind::U3, a);
  const cplx ph = std::polar(1.0, U(rng));
  for (auto& e : m) e *= ph;
  return m;
}

// Random circuit: every gate kind, 0-3 controls on |0> or |1>, angles from
// constants, parameters and features.
Circuit random_circuit(std::mt19937_64& rng, int n, int n_gates, int max_controls) {
  Circuit c;
  c.n_qubits = n;
  std::uniform_int_distribution<int> kind_d(0, int(GateKind::Swap));
  std::uniform_int_distribution<int> q_d(0, n - 1), src_d(0, 2), idx_d(0, 3);
  std::uniform_int_distribution<int> nctl_d(0, max_controls);
  std::uniform_real_distribution<double> val(-3, 3);
  for (int k = 0; k < n_gates; ++k) {
    Gate g;
    g.kind = GateKind(kind_d(rng));
    std::vector<int> qs(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) qs[std::size_t(i)] = i;
    std::shuffle(qs.begin(), qs.end(), rng);
    std::size_t used = 0;
    g.target = qs[used++];
    if (g.kind == GateKind::Swap) g.target2 = qs[used++];
    const int nctl = std::min<int>(nctl_d(rng), n - int(used));
    for (int j = 0; j < nctl; ++j) g.controls.push_back({qs[used++], bool(rng() & 1)});
    for (int j = 0; j < 3; ++j) {
      switch (src_d(rng)) {
        case 0: g.angles[std::size_t(j)] = Angle::constant(val(rng)); break;
        case 1: g.angles[std::size_t(j)] = Angle::param(idx_d(rng), val(rng)); break;
        default: g.angles[std::size_t(j)] = Angle::feature(idx_d(rng), val(rng)); break;
      }
    }
    if (g.kind == GateKind::Matrix) g.matrix = random_unitary(rng);
    add_gate(c, g);
  }
  return c;
}

TEST(QasmWriter, RoundTripRandomCircuits) {
  std::mt19937_64 rng(2024);
  std::uniform_real_distribution<double> val(-2, 2);
  for (int trial = 0; trial < 60; ++trial) {
    const int n = 4 + trial % 3;
    const Circuit c = random_circuit(rng, n, 25, 3);
    std::vector<double> theta(std::size_t(c.n_params)), x(std::size_t(c.n_features));
    for (auto& v : theta) v = val(rng);
    for (auto& v : x) v = val(rng);
    const std::string text = write_qasm(c, theta, x.data());
    ParsedQasm p;
    ASSERT_NO_THROW(p = parse_qasm(text)) << text;
    EXPECT_EQ(p.circuit.n_qubits, n);
    const std::vector<cplx> want = simulate(c, theta, x.data()), got = simulate(p.circuit, p.theta);
    EXPECT_LT(distance(got, want, true), 1e-10) << text;
  }
}

// Every gate kind with 0..4 controls, each control on |0> and |1>, from
// every basis state of the controls (so inactive branches are checked too).
TEST(QasmWriter, EveryKindEveryControlCount) {
  std::mt19937_64 rng(99);
  std::uniform_real_distribution<double> val(-3, 3);
  for (int kind = 0; kind <= int(GateKind::Swap); ++kind) {
    for (int nctl = 0; nctl <= 4; ++nctl) {
      const int n = nctl + 2;
      Gate g;
      g.kind = GateKind(kind);
      g.target = 0;
      if (g.kind == GateKind::Swap) g.target2 = 1;
      for (int j = 0; j < nctl; ++j) g.controls.push_back({2 + j, bool(j % 2)});
      for (int j = 0; j < 3; ++j) g.angles[std::size_t(j)] = Angle::constant(val(rng));
      if (g.kind == GateKind::Matrix) g.matrix = random_unitary(rng);
      Circuit c;
      c.n_qubits = n;
      // random product input state, then the gate; compare the full unitary's action
      for (int q = 0; q < n; ++q) add_gate(c, make_gate(GateKind::U3, q, {}, {Angle::constant(val(rng)), Angle::constant(val(rng)), Angle::constant(val(rng))}));
      add_gate(c, g);
      const std::string text = write_qasm(c, {}, nullptr);
      const ParsedQasm p = parse_qasm(text);
      EXPECT_LT(distance(unitary(p.circuit, p.theta), unitary(c, {}), true), 1e-10)
          << describe(g) << "\n" << text;
    }
  }
}

TEST(QasmWriter, AnglesReadBackExactly) {
  Circuit c;
  c.n_qubits = 2;
  add_gate(c, make_gate(GateKind::RX, 0, {}, {Angle::param(0, 0.5)}));
  add_gate(c, make_gate(GateKind::U3, 1, {{0, true}}, {Angle::param(1), Angle::feature(0), Angle::constant(M_PI / 3)}));
  add_gate(c, make_gate(GateKind::RZ, 1, {}, {Angle::constant(-0.0)}));
  const std::vector<double> theta = {0.1234567890123456789, -2.718281828459045};
  const double x[1] = {1e-7 / 3};
  const std::string text = write_qasm(c, theta, x, {true, "exported\nby qmoe"});
  EXPECT_EQ(text.rfind("// exported\n// by qmoe\nOPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[2];\ncreg c[2];\n", 0), 0u) << text;
  EXPECT_NE(text.find("measure q -> c;"), std::string::npos);
  const ParsedQasm p = parse_qasm(text);
  ASSERT_EQ(p.theta.size(), 5u) << text;
  const std::vector<double> want = {0.5 * theta[0], theta[1], x[0], M_PI / 3, 0.0};
  for (std::size_t k = 0; k < want.size(); ++k) EXPECT_NEAR(p.theta[k], want[k], 1e-15 * (1 + std::abs(want[k])));
  EXPECT_THROW(write_qasm(c, {0.1}, x), std::invalid_argument);
  EXPECT_THROW(write_qasm(c, theta, nullptr), std::invalid_argument);
}

TEST(QasmWriter, UsesOnlyQelibGates) {
  std::mt19937_64 rng(5);
  const Circuit c = random_circuit(rng, 6, 200, 4);
  std::vector<double> theta(std::size_t(c.n_params), 0.3), x(std::size_t(c.n_features), -0.7);
  const std::string text = write_qasm(c, theta, x.data());
  const std::vector<std::string> allowed = {"OPENQASM", "include", "qreg", "u3", "u2", "u1", "cx", "id", "x", "y", "z", "h",
                                            "s", "sdg", "t", "tdg", "rx", "ry", "rz", "cz", "cy", "ch",
                                            "ccx", "crz", "cu1", "cu3", "crx", "cry", "swap"};
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const std::string word = line.substr(0, line.find_first_of(" ("));
    EXPECT_NE(std::find(allowed.begin(), allowed.end(), word), allowed.end()) << line;
  }
}


// The sample files parse; the Jacobian w.r.t. the file's numeric arguments
// agrees between the adjoint method, the parameter-shift rule and central
// differences (checks the parameter wiring of every gate, incl. u0 and cu).
TEST(QasmFiles, JacobianMethodsAgree) {
  for (const char* name : {"all_gates.qasm", "bell.qasm", "ry.qasm"}) {
    std::ifstream in(std::string(QMOE_SOURCE_DIR) + "/tests/data/qasm/" + name);
    ASSERT_TRUE(in) << name;
    std::stringstream buf;
    buf << in.rdbuf();
    ParsedQasm p = parse_qasm(buf.str() + (std::string(name) == "bell.qasm" ? "u0(0.5) a[0];\n" : "u0(0.5) q[0];\n") +
                              (std::string(name) == "all_gates.qasm" ? "cu(0.1,0.2,0.3,0.4) q[0], r[1];\n" : ""));
    std::vector<PauliString> obs;
    for (int q = 0; q < p.circuit.n_qubits; ++q) obs.push_back(PauliString::Z(q));
    const auto adj = adjoint_jacobian<double>(p.circuit, p.theta, nullptr, obs);
    const auto ps = param_shift_jacobian(p.circuit, p.theta, nullptr, obs);
    ASSERT_EQ(adj.size(), obs.size() * p.theta.size());
    for (std::size_t k = 0; k < adj.size(); ++k) EXPECT_NEAR(adj[k], ps[k], 1e-10) << name << " " << k;
    const double h = 1e-6;
    for (std::size_t j = 0; j < p.theta.size(); ++j) {
      std::vector<double> tp = p.theta, tm = p.theta;
      tp[j] += h;
      tm[j] -= h;
      std::vector<double> ep(obs.size()), em(obs.size());
      Workspace<double> ws;
      forward<double>(p.circuit, tp, nullptr, 1, obs, ep.data(), ws);
      forward<double>(p.circuit, tm, nullptr, 1, obs, em.data(), ws);
      for (std::size_t k = 0; k < obs.size(); ++k)
        EXPECT_NEAR(adj[k * p.theta.size() + j], (ep[k] - em[k]) / (2 * h), 1e-7) << name << " p" << j;
    }
  }
}

TEST(Qasm, NestingUpToTheLimitParses) {
  // kQasmMaxDepth levels: 199 parentheses inside the argument's own level, or 199 signs.
  const std::string h = "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[1];\n";
  const int n = kQasmMaxDepth - 1;
  EXPECT_NO_THROW(parse_qasm(h + "rz(" + std::string(n, '(') + "1" + std::string(n, ')') + ") q[0];"));
  EXPECT_NO_THROW(parse_qasm(h + "rz(" + std::string(n, '-') + "1) q[0];"));
}

}  // namespace

// User gate definitions expand like macros: parameters (also in expressions),
// nesting (gates defined from other user gates), broadcasting; the result is
// the circuit written with built-in gates. Each elementary gate's evaluated
// argument is one parameter, in expansion order.
TEST(QasmUserGates, ExpandToBuiltins) {
  const std::string defs =
      kHead +
      "gate rot(a, b) q { rx(a) q; ry(b / 2) q; }\n"
      "gate ent(t) c, d { rot(t, 2 * t) c; cx c, d; rz(-t) d; }\n"
      "gate twice(t) c, d { ent(t) c, d; ent(t + pi) d, c; barrier c, d; }\n"
      "qreg q[3];\n"
      "twice(0.3) q[0], q[2];\n"
      "rot(0.1, 0.4) q;\n";
  const std::string flat =
      kHead + "qreg q[3];\n"
      "rx(0.3) q[0]; ry(0.3) q[0]; cx q[0], q[2]; rz(-0.3) q[2];\n"
      "rx(0.3 + pi) q[2]; ry(0.3 + pi) q[2]; cx q[2], q[0]; rz(-(0.3 + pi)) q[0];\n"
      "rx(0.1) q[0]; ry(0.2) q[0]; rx(0.1) q[1]; ry(0.2) q[1]; rx(0.1) q[2]; ry(0.2) q[2];\n";
  const ParsedQasm a = parse_qasm(defs), b = parse_qasm(flat);
  ASSERT_EQ(a.circuit.gates.size(), b.circuit.gates.size());
  ASSERT_EQ(a.theta.size(), b.theta.size());
  for (std::size_t j = 0; j < a.theta.size(); ++j) EXPECT_NEAR(a.theta[j], b.theta[j], 1e-15) << j;
  EXPECT_LT(distance(simulate(a.circuit, a.theta), simulate(b.circuit, b.theta), false), 1e-12);
  // the Jacobian is over the elementary gates' arguments, as for the flat file
  const std::vector<PauliString> obs = {PauliString::Z(0), PauliString::Z(2)};
  const auto ja = adjoint_jacobian<double>(a.circuit, a.theta, nullptr, obs);
  const auto jb = adjoint_jacobian<double>(b.circuit, b.theta, nullptr, obs);
  for (std::size_t j = 0; j < ja.size(); ++j) EXPECT_NEAR(ja[j], jb[j], 1e-12);
  // a user gate needs no include when its body uses only U and CX
  const ParsedQasm c = parse_qasm("OPENQASM 2.0;\ngate myx a { U(pi, 0, pi) a; }\nqreg q[1];\nmyx q[0];");
  EXPECT_EQ(c.circuit.gates.size(), 1u);
}

// Definitions that would expand to more than 2^20 gates are refused (the
// body is expanded per call, so nesting doubles the count per level).
TEST(QasmUserGates, ExpansionIsBounded) {
  std::string text = kHead + "gate g0 a { x a; x a; }\n";
  for (int k = 1; k <= 21; ++k)
    text += "gate g" + std::to_string(k) + " a { g" + std::to_string(k - 1) + " a; g" + std::to_string(k - 1) + " a; }\n";
  text += "qreg q[1];\ng21 q[0];\n";
  try {
    parse_qasm(text);
    FAIL() << "expected an error";
  } catch (const QasmError& e) {
    EXPECT_NE(e.message().find("too many gates"), std::string::npos) << e.what();
  }
}


// ---- dynamic programs: reset, if, mid-circuit measurement ---------------------------
namespace {

// Independent reference: the classical-quantum state as a map from the values
// of all classical bits to an unnormalised density matrix, every step applied
// where it stands (measurements project in place; nothing is deferred or
// branched): gates U rho U^+, measurement P_v rho P_v into the bit,
// reset P_0 rho P_0 + (X P_1) rho (X P_1)^+.
using CqState = std::map<std::vector<char>, DenseMat>;

DenseMat adjoint(const DenseMat& a, std::size_t dim) {
  DenseMat r(dim * dim);
  for (std::size_t i = 0; i < dim; ++i)
    for (std::size_t j = 0; j < dim; ++j) r[j * dim + i] = std::conj(a[i * dim + j]);
  return r;
}

// K rho K^+
DenseMat sandwich(const DenseMat& k, const DenseMat& rho, std::size_t dim) {
  return matmul(matmul(k, rho, dim), adjoint(k, dim), dim);
}

void add_to(CqState& st, const std::vector<char>& bits, const DenseMat& rho) {
  auto [it, fresh] = st.emplace(bits, rho);
  if (!fresh)
    for (std::size_t i = 0; i < rho.size(); ++i) it->second[i] += rho[i];
}

// |v><v| on qubit q (target_zero: |0><v|, i.e. the reset's Kraus operator for v).
DenseMat qubit_op(int n, int q, int v, bool target_zero) {
  const std::size_t dim = std::size_t(1) << n;
  DenseMat k(dim * dim, 0.0);
  for (std::size_t i = 0; i < dim; ++i)
    if (int((i >> q) & 1) == v) {
      const std::size_t to = target_zero ? (i & ~(std::size_t(1) << q)) : i;
      k[to * dim + i] = 1.0;
    }
  return k;
}

CqState reference_run(const ParsedQasm& p) {
  const int n = p.circuit.n_qubits;
  const std::size_t dim = std::size_t(1) << n;
  long n_bits = 0;
  for (const QasmRegister& r : p.cregs) n_bits += r.size;
  DenseMat rho0(dim * dim, 0.0);
  rho0[0] = 1.0;
  CqState st;
  st[std::vector<char>(std::size_t(n_bits), 0)] = rho0;
  for (const QasmOp& op : p.ops) {
    CqState next;
    for (const auto& [bits, rho] : st) {
      if (op.cond_reg >= 0) {
        const QasmRegister& r = p.cregs[std::size_t(op.cond_reg)];
        std::uint64_t v = 0;
        for (int i = 0; i < r.size; ++i) v |= std::uint64_t(bits[std::size_t(r.offset + i)]) << i;
        if (v != op.cond_value) {
          add_to(next, bits, rho);
          continue;
        }
      }
      CqState cur;
      cur[bits] = rho;
      if (op.kind == QasmOp::Kind::Gates) {
        DenseMat r = rho;
        for (std::size_t g = op.begin; g < op.end; ++g) {
          const Gate& gate = p.circuit.gates[g];
          const auto a = resolve_angles(gate, p.theta.data(), nullptr);
          r = sandwich(dense_gate_matrix(n, gate, a.data()), r, dim);
        }
        cur[bits] = r;
      }
      for (std::size_t k = 0; k < op.qubits.size(); ++k) {
        CqState after;
        for (const auto& [bb, r] : cur) {
          if (op.kind == QasmOp::Kind::Reset) {
            DenseMat z = sandwich(qubit_op(n, op.qubits[k], 0, true), r, dim);
            const DenseMat o = sandwich(qubit_op(n, op.qubits[k], 1, true), r, dim);
            for (std::size_t i = 0; i < z.size(); ++i) z[i] += o[i];
            add_to(after, bb, z);
          } else {
            for (int v = 0; v < 2; ++v) {
              std::vector<char> b2 = bb;
              b2[std::size_t(op.bits[k])] = char(v);
              add_to(after, b2, sandwich(qubit_op(n, op.qubits[k], v, false), r, dim));
            }
          }
        }
        cur = std::move(after);
      }
      for (const auto& [bb, r] : cur) add_to(next, bb, r);
    }
    st = std::move(next);
  }
  return st;
}

std::vector<double> reference_z(const ParsedQasm& p, const CqState& st) {
  const int n = p.circuit.n_qubits;
  const std::size_t dim = std::size_t(1) << n;
  std::vector<double> z(std::size_t(n), 0.0);
  for (const auto& [bits, rho] : st)
    for (std::size_t i = 0; i < dim; ++i)
      for (int q = 0; q < n; ++q) z[std::size_t(q)] += rho[i * dim + i].real() * (((i >> q) & 1) ? -1.0 : 1.0);
  return z;
}

std::map<std::string, double> reference_counts(const ParsedQasm& p, const CqState& st) {
  const std::size_t dim = std::size_t(1) << p.circuit.n_qubits;
  std::map<std::string, double> prob;
  for (const auto& [bits, rho] : st) {
    double tr = 0;
    for (std::size_t i = 0; i < dim; ++i) tr += rho[i * dim + i].real();
    prob[classical_bits(p, bits)] += tr;
  }
  return prob;
}

ParsedQasm dyn(const std::string& body) { return parse_qasm(kHead + body); }

// Shots agree with probabilities p: each count within 6 binomial standard errors.
void expect_counts(const std::map<std::string, long>& counts, const std::map<std::string, double>& prob,
                   long shots, const std::string& what) {
  long total = 0;
  for (const auto& [s, c] : counts) {
    total += c;
    EXPECT_TRUE(prob.count(s)) << what << ": unexpected value " << s;
  }
  EXPECT_EQ(total, shots) << what;
  for (const auto& [s, pr] : prob) {
    const auto it = counts.find(s);
    const double f = it == counts.end() ? 0.0 : double(it->second) / double(shots);
    const double sd = std::sqrt(std::max(pr * (1 - pr), 1.0 / double(shots)) / double(shots));
    EXPECT_LE(std::abs(f - pr), 6 * sd) << what << ": value " << s << " frequency " << f << " vs " << pr;
  }
}

}  // namespace

TEST(QasmDynamic, StepsAndWhatMakesAProgramDynamic) {
  // measured at the end only: static, the same circuit and `measured` as before
  ParsedQasm p = dyn("qreg q[2];\ncreg c[2];\nreset q;\nh q[0];\ncx q[0], q[1];\nmeasure q -> c;\n");
  EXPECT_FALSE(p.dynamic);
  ASSERT_EQ(p.ops.size(), 2u);  // the reset of fresh qubits is dropped
  EXPECT_EQ(p.ops[0].kind, QasmOp::Kind::Gates);
  EXPECT_EQ(p.ops[0].end - p.ops[0].begin, 2u);
  EXPECT_EQ(p.ops[1].kind, QasmOp::Kind::Measure);
  EXPECT_EQ(p.ops[1].at_end, std::vector<bool>({true, true}));
  EXPECT_EQ(p.measured, (std::vector<std::pair<int, long>>{{0, 0}, {1, 1}}));
  // a measurement followed by gates on other qubits only is still at the end
  EXPECT_FALSE(dyn("qreg q[2];\ncreg c[2];\nh q[0];\nmeasure q[0] -> c[0];\nh q[1];\nmeasure q[1] -> c[1];\n").dynamic);
  // ... but not when its qubit is used again
  p = dyn("qreg q[2];\ncreg c[2];\nh q[0];\nmeasure q[0] -> c[0];\nh q[0];\n");
  EXPECT_TRUE(p.dynamic);
  EXPECT_EQ(p.ops[1].at_end, std::vector<bool>({false}));
  // reset of a used qubit; `reset q;` keeps only the qubits gates have touched
  p = dyn("qreg q[3];\nx q[1];\nreset q;\n");
  EXPECT_TRUE(p.dynamic);
  ASSERT_EQ(p.ops.size(), 2u);
  EXPECT_EQ(p.ops[1].kind, QasmOp::Kind::Reset);
  EXPECT_EQ(p.ops[1].qubits, std::vector<int>({1}));
  // if: its register's measurements happen mid-circuit; another register's stay at the end
  p = dyn("qreg q[2];\ncreg c[1];\ncreg d[1];\nh q[0];\nmeasure q[0] -> c[0];\nmeasure q[1] -> d[0];\n"
          "if(c==1) x q[1];\nh q[0];\nif(d==18446744073709551615) reset q[0];\n");
  EXPECT_TRUE(p.dynamic);
  ASSERT_EQ(p.ops.size(), 6u);
  EXPECT_EQ(p.ops[1].at_end, std::vector<bool>({false}));  // q[0] used again and c tested
  EXPECT_EQ(p.ops[2].at_end, std::vector<bool>({false}));  // q[1] used again by the if's x
  EXPECT_EQ(p.ops[3].kind, QasmOp::Kind::Gates);
  EXPECT_EQ(p.ops[3].cond_reg, 0);
  EXPECT_EQ(p.ops[3].cond_value, 1u);
  EXPECT_EQ(p.ops[4].kind, QasmOp::Kind::Gates);
  EXPECT_EQ(p.ops[4].cond_reg, -1);  // h q[0]: a step of its own after the conditioned one
  EXPECT_EQ(p.ops[5].kind, QasmOp::Kind::Reset);
  EXPECT_EQ(p.ops[5].cond_reg, 1);
  EXPECT_EQ(p.ops[5].cond_value, 18446744073709551615u);
  EXPECT_EQ(p.circuit.gates.size(), 3u);  // h, x, h
  p = dyn("qreg q[2];\ncreg c[1];\ncreg d[1];\nmeasure q[0] -> c[0];\nif(d==0) x q[1];\n");
  EXPECT_EQ(p.ops[0].at_end, std::vector<bool>({true}));  // d is tested, c is not
  EXPECT_TRUE(p.dynamic);                                  // the if still is
  // a bit measured again mid-circuit: the first measurement cannot wait for the end
  p = dyn("qreg q[2];\ncreg c[1];\nmeasure q[0] -> c[0];\nmeasure q[1] -> c[0];\nh q[1];\n");
  EXPECT_EQ(p.ops[0].at_end, std::vector<bool>({false}));
  EXPECT_EQ(p.ops[1].at_end, std::vector<bool>({false}));
  // spacing as Qiskit writes it, and with blanks
  EXPECT_NO_THROW(dyn("qreg q[1];\ncreg c[1];\nif ( c == 0 ) u3(0.1,0.2,0.3) q[0];\nif(c==1) measure q[0] -> c[0];\n"));
}

// Qiskit's exporter writes `initialize` as a gate whose body starts with a
// reset (not OpenQASM 2.0, accepted): dropped on a fresh qubit, a Reset step
// between the body's gates otherwise (also under if).
TEST(QasmDynamic, ResetInAGateBodyAsQiskitWritesInitialize) {
  const std::string defs =
      "gate state_preparation(param0,param1) q0 { ry(2.0943951023931953) q0; }\n"
      "gate initialize(param0,param1) q0 { reset q0; state_preparation(param0,param1) q0; }\n"
      "qreg q[2];\ncreg c[1];\n";
  ParsedQasm p = dyn(defs + "initialize(0.5,0.8660254037844386) q[0];\nmeasure q[0] -> c[0];\n");
  EXPECT_FALSE(p.dynamic);
  ASSERT_EQ(p.ops.size(), 2u);
  EXPECT_EQ(p.circuit.gates.size(), 1u);
  p = dyn(defs + "h q;\ninitialize(0.5,0.8660254037844386) q;\nmeasure q[0] -> c[0];\nif(c==1) initialize(0,1) q[1];\n");
  ASSERT_TRUE(p.dynamic);
  // h h | reset q0 | ry q0 | reset q1 | ry q1 | measure | (if) reset q1 | (if) ry q1
  ASSERT_EQ(p.ops.size(), 8u);
  EXPECT_EQ(p.ops[1].kind, QasmOp::Kind::Reset);
  EXPECT_EQ(p.ops[1].qubits, std::vector<int>({0}));
  EXPECT_EQ(p.ops[2].end - p.ops[2].begin, 1u);
  EXPECT_EQ(p.ops[3].qubits, std::vector<int>({1}));
  EXPECT_EQ(p.ops[6].kind, QasmOp::Kind::Reset);
  EXPECT_EQ(p.ops[6].cond_reg, 0);
  EXPECT_EQ(p.ops[7].kind, QasmOp::Kind::Gates);
  EXPECT_EQ(p.ops[7].cond_reg, 0);
  const std::vector<double> z = dynamic_expval_z<double>(p), zr = reference_z(p, reference_run(p));
  EXPECT_NEAR(z[0], -0.5, 1e-12);
  EXPECT_NEAR(z[1], -0.5, 1e-12);
  for (int q = 0; q < 2; ++q) EXPECT_NEAR(z[std::size_t(q)], zr[std::size_t(q)], 1e-12);
}

TEST(QasmDynamic, MeasureThenResetIsZero) {
  const ParsedQasm p = dyn("qreg q[1];\ncreg c[1];\nh q[0];\nmeasure q[0] -> c[0];\nreset q[0];\n");
  ASSERT_TRUE(p.dynamic);
  EXPECT_NEAR(dynamic_expval_z<double>(p)[0], 1.0, 1e-14);
  const DynamicShots r = dynamic_shots<double>(p, 2000, 1, true);
  EXPECT_EQ(r.ones[0], 0);
  expect_counts(r.counts, {{"0", 0.5}, {"1", 0.5}}, 2000, "h; measure; reset");
  // without the measurement too (reset alone is not unitary)
  const ParsedQasm p2 = dyn("qreg q[2];\nh q[0];\ncx q[0], q[1];\nreset q[0];\n");
  const std::vector<double> z = dynamic_expval_z<double>(p2);
  EXPECT_NEAR(z[0], 1.0, 1e-14);
  EXPECT_NEAR(z[1], 0.0, 1e-14);
}

TEST(QasmDynamic, BellPairCorrectedByIf) {
  const ParsedQasm p = dyn("qreg q[2];\ncreg c[1];\ncreg m[1];\nh q[0];\ncx q[0], q[1];\n"
                           "measure q[0] -> c[0];\nif(c==1) x q[1];\nmeasure q[1] -> m[0];\n");
  ASSERT_TRUE(p.dynamic);
  const std::vector<double> z = dynamic_expval_z<double>(p);
  EXPECT_NEAR(z[0], 0.0, 1e-14);
  EXPECT_NEAR(z[1], 1.0, 1e-14);
  const DynamicShots r = dynamic_shots<double>(p, 4000, 7, true);
  EXPECT_EQ(r.ones[1], 0);
  expect_counts(r.counts, {{"0 0", 0.5}, {"0 1", 0.5}}, 4000, "bell + if");  // m c
}

// Teleportation as Qiskit writes it (one 1-bit register per measurement): the
// state u3(t, f, l)|0> arrives on q[2] whatever the outcomes, so its Bloch
// vector (read with h, or sdg h, before the end) is (sin t cos f, sin t sin f, cos t).
TEST(QasmDynamic, TeleportationReproducesTheState) {
  const double t = 0.7, f = 0.4;
  const std::string head = "qreg q[3];\ncreg c0[1];\ncreg c1[1];\ncreg c2[1];\n"
                           "u3(0.7,0.4,-1.1) q[0];\nbarrier q[0],q[1],q[2];\nh q[1];\ncx q[1],q[2];\n"
                           "cx q[0],q[1];\nh q[0];\nmeasure q[0] -> c0[0];\nmeasure q[1] -> c1[0];\n"
                           "if(c1==1) x q[2];\nif(c0==1) z q[2];\n";
  const std::vector<std::pair<std::string, double>> axes = {
      {"", std::cos(t)}, {"h q[2];\n", std::sin(t) * std::cos(f)}, {"sdg q[2];\nh q[2];\n", std::sin(t) * std::sin(f)}};
  for (const auto& [rot, want] : axes) {
    const ParsedQasm p = dyn(head + rot + "measure q[2] -> c2[0];\n");
    ASSERT_TRUE(p.dynamic);
    EXPECT_NEAR(dynamic_expval_z<double>(p)[2], want, 1e-12) << rot;
    EXPECT_NEAR(dynamic_expval_z<float>(p)[2], want, 1e-5) << rot;
    const long n = 20000;
    const DynamicShots r = dynamic_shots<double>(p, n, 11, true);
    const double z = 1 - 2 * double(r.ones[2]) / double(n);
    EXPECT_LE(std::abs(z - want), 5 * std::sqrt((1 - want * want) / double(n))) << rot;
    EXPECT_LE(r.branches, 4);
    // every outcome of the two measurements is equally likely
    std::map<std::string, long> c01;
    for (const auto& [s, k] : r.counts) c01[s.substr(2)] += k;  // drop c2
    expect_counts(c01, {{"0 0", 0.25}, {"0 1", 0.25}, {"1 0", 0.25}, {"1 1", 0.25}}, n, "teleport " + rot);
  }
}

TEST(QasmDynamic, ConditionsAndOverwrittenBits) {
  // a broadcast measure under if: the register is tested before the first qubit is read
  ParsedQasm p = dyn("qreg q[2];\ncreg c[2];\nx q;\nif(c==0) measure q -> c;\n");
  DynamicShots r = dynamic_shots<double>(p, 100, 0, true);
  EXPECT_EQ(r.counts, (std::map<std::string, long>{{"11", 100}}));
  // a value the register cannot hold: never true
  p = dyn("qreg q[1];\ncreg c[2];\nif(c==4) x q[0];\nif(c==0) h q[0];\nif(c==0) h q[0];\nmeasure q[0] -> c[1];\n");
  r = dynamic_shots<double>(p, 100, 0, true);
  EXPECT_EQ(r.counts, (std::map<std::string, long>{{"00", 100}}));
  EXPECT_NEAR(dynamic_expval_z<double>(p)[0], 1.0, 1e-14);
  // if on a measured bit, then the bit overwritten mid-circuit
  p = dyn("qreg q[2];\ncreg c[1];\nx q[0];\nmeasure q[0] -> c[0];\nif(c==1) x q[1];\n"
          "measure q[1] -> c[0];\nif(c==1) x q[0];\nmeasure q[0] -> c[0];\n");
  r = dynamic_shots<double>(p, 10, 0, true);
  EXPECT_EQ(r.counts, (std::map<std::string, long>{{"0", 10}}));
  EXPECT_EQ(r.ones, (std::vector<long>{0, 10}));
  // a bit whose first measurement could wait for the end, overwritten by a
  // mid-circuit one: the later value stays
  p = dyn("qreg q[2];\ncreg c[1];\nx q[0];\nmeasure q[0] -> c[0];\nmeasure q[1] -> c[0];\nh q[1];\n");
  EXPECT_EQ(dynamic_shots<double>(p, 10, 0, true).counts, (std::map<std::string, long>{{"0", 10}}));
}

// Random programs on 3 qubits against the reference: exact expectations to
// rounding, shots' counts and expectations within sampling error.
TEST(QasmDynamic, MatchesTheDensityMatrixReference) {
  std::mt19937_64 rng(2024);
  auto pick = [&](int k) { return int(rng() % std::uint64_t(k)); };
  auto angle = [&] { return std::to_string(std::uniform_real_distribution<double>(-3, 3)(rng)); };
  auto qubit = [&] { return "q[" + std::to_string(pick(3)) + "]"; };
  auto qop = [&](int kind) -> std::string {
    switch (kind) {
      case 0: {
        const char* g[] = {"h ", "x ", "sx ", "t "};
        return g[pick(4)] + qubit() + ";";
      }
      case 1: return (pick(2) ? "ry(" : "rx(") + angle() + ") " + qubit() + ";";
      case 2: return "u3(" + angle() + "," + angle() + "," + angle() + ") " + qubit() + ";";
      case 3: {
        const int a = pick(3), b = (a + 1 + pick(2)) % 3;
        return "cx q[" + std::to_string(a) + "], q[" + std::to_string(b) + "];";
      }
      case 4: return "measure " + qubit() + (pick(3) ? " -> a[" + std::to_string(pick(3)) + "];" : " -> b[0];");
      case 5: return "reset " + qubit() + ";";
      case 6: return pick(2) ? "measure q -> a;" : "reset q;";
      default: return "rzz(" + angle() + ") " + "q[0], q[2];";
    }
  };
  int dynamic = 0, ran = 0;
  for (int trial = 0; trial < 60; ++trial) {
    std::string text = "qreg q[3];\ncreg a[3];\ncreg b[1];\n";
    const int len = 3 + pick(8);
    for (int s = 0; s < len; ++s) {
      const int kind = pick(10);
      if (kind >= 8) {
        const bool on_a = pick(2);
        text += "if(" + std::string(on_a ? "a" : "b") + "==" + std::to_string(pick(on_a ? 9 : 3)) + ") " + qop(pick(7)) + "\n";
      } else {
        text += qop(kind) + "\n";
      }
    }
    text += "measure q[2] -> a[2];\n";  // the other bits keep what the program wrote
    const ParsedQasm p = dyn(text);
    dynamic += p.dynamic;
    const CqState ref = reference_run(p);
    const std::vector<double> zr = reference_z(p, ref);
    std::vector<double> z, zf;
    try {
      z = dynamic_expval_z<double>(p);
      zf = dynamic_expval_z<float>(p);
    } catch (const QasmBranchLimit&) {
      continue;  // too many branches for the exact walk
    }
    ++ran;
    for (int q = 0; q < 3; ++q) {
      EXPECT_NEAR(z[std::size_t(q)], zr[std::size_t(q)], 1e-10) << text;
      EXPECT_NEAR(zf[std::size_t(q)], zr[std::size_t(q)], 2e-5) << text;
    }
    const long n = 3000;
    const DynamicShots r = dynamic_shots<double>(p, n, std::uint64_t(trial), true);
    expect_counts(r.counts, reference_counts(p, ref), n, text);
    for (int q = 0; q < 3; ++q) {
      const double zs = 1 - 2 * double(r.ones[std::size_t(q)]) / double(n), zq = zr[std::size_t(q)];
      EXPECT_LE(std::abs(zs - zq), 6 * std::sqrt(std::max(1 - zq * zq, 1.0 / double(n)) / double(n))) << text;
    }
    if (!p.dynamic) {  // the static path: the circuit's final state, measured
      Workspace<double> ws;
      std::vector<PauliString> obs = {PauliString::Z(0), PauliString::Z(1), PauliString::Z(2)};
      std::vector<double> ev(3);
      forward<double>(p.circuit, p.theta, nullptr, 1, obs, ev.data(), ws);
      for (int q = 0; q < 3; ++q) EXPECT_NEAR(ev[std::size_t(q)], zr[std::size_t(q)], 1e-10) << text;
    }
  }
  EXPECT_GE(dynamic, 40);
  EXPECT_GE(ran, 55);
}

// Shots depend on the seed only: not on the thread count (a 17-qubit state is
// above the size where the kernels run in parallel) or on repetition.
TEST(QasmDynamic, ShotsAreSeededAndThreadIndependent) {
  std::string text = "qreg q[17];\ncreg c[2];\nh q;\nreset q[16];\ncx q[0], q[16];\nmeasure q[0] -> c[0];\n"
                     "if(c==1) x q[16];\nmeasure q[16] -> c[1];\nreset q[3];\nrx(0.3) q[3];\nh q[0];\n"
                     "measure q[3] -> c[1];\nif(c==2) h q[5];\n";
  const ParsedQasm p = dyn(text);
  ASSERT_TRUE(p.dynamic);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const DynamicShots one = dynamic_shots<double>(p, 500, 5, true);
  const std::vector<double> z1 = dynamic_expval_z<double>(p);
  omp_set_num_threads(std::max(2, threads));
  const DynamicShots many = dynamic_shots<double>(p, 500, 5, true);
  const std::vector<double> zm = dynamic_expval_z<double>(p);
  omp_set_num_threads(threads);
  EXPECT_EQ(one.ones, many.ones);
  EXPECT_EQ(one.counts, many.counts);
  for (std::size_t q = 0; q < z1.size(); ++q) EXPECT_NEAR(z1[q], zm[q], 1e-14);
  EXPECT_EQ(dynamic_shots<double>(p, 500, 5, true).counts, one.counts);
  EXPECT_NE(dynamic_shots<double>(p, 500, 6, true).ones, one.ones);
  EXPECT_NEAR(z1[16], 1.0, 1e-12);   // corrected by the if
  EXPECT_NEAR(z1[3], std::cos(0.3), 1e-12);
}

TEST(QasmDynamic, BranchLimits) {
  std::string text = "qreg q[2];\ncreg c[1];\n";
  for (int k = 0; k < 13; ++k) text += "h q[0];\nmeasure q[0] -> c[0];\n";  // 2^13 outcomes
  text += "x q[0];\n";
  const ParsedQasm p = dyn(text);
  EXPECT_THROW(dynamic_expval_z<double>(p), QasmBranchLimit);
  DynamicLimits big;
  big.max_branches = 1 << 14;
  EXPECT_NEAR(dynamic_expval_z<double>(p, big)[0], 0.0, 1e-12);
  const DynamicShots r = dynamic_shots<double>(p, 300, 0, true);  // at most one branch per shot
  EXPECT_LE(r.branches, 300);
  EXPECT_EQ(r.counts.size(), 2u);
  DynamicLimits small;
  small.max_state_bytes = 3 * 4 * sizeof(double) * 2 - 1;  // fewer than three 2-qubit states
  try {
    dynamic_shots<double>(p, 300, 0, false, small);
    FAIL() << "expected QasmBranchLimit";
  } catch (const QasmBranchLimit& e) {
    EXPECT_NE(std::string(e.what()).find("states of 2 qubits at once"), std::string::npos) << e.what();
  }
}

}  // namespace qmoe
