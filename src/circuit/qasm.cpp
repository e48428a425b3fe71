// The OpenQASM 2.0 reader (qasm.hpp: parse_qasm): tokenizer, qelib1.inc gate
// table, user gates, registers, measure / reset / if; the writer is qasm_writer.cpp.
#include "circuit/qasm.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <unordered_map>

namespace qmoe {

QasmError::QasmError(int line, int column, const std::string& message)
    : std::runtime_error("line " + std::to_string(line) + ", column " + std::to_string(column) +
                         ": " + message),
      line_(line),
      column_(column),
      message_(message) {}

// ============================================================================
// Reader
// ============================================================================
namespace {

enum class Tok { Ident, Int, Real, String, Sym, End };

struct Token {
  Tok kind = Tok::End;
  std::string text;  // identifier / number / string contents / symbol
  int line = 1, col = 1;
  int end_line = 1, end_col = 1;  // just past the token
};

std::string show(const Token& t) {
  switch (t.kind) {
    case Tok::End: return "end of file";
    case Tok::String: return "\"" + t.text + "\"";
    default: {
      std::string s = t.text.size() > 40 ? t.text.substr(0, 40) + "..." : t.text;
      return "'" + s + "'";
    }
  }
}

std::vector<Token> tokenize(std::string_view s) {
  std::vector<Token> out;
  int line = 1, col = 1;
  std::size_t i = 0;
  auto advance = [&](std::size_t n) {
    for (std::size_t k = 0; k < n && i < s.size(); ++k, ++i) {
      if (s[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
  };
  auto is_digit = [](char ch) { return ch >= '0' && ch <= '9'; };
  auto is_alpha = [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
  };
  while (i < s.size()) {
    const char ch = s[i];
    if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\f' || ch == '\v') {
      advance(1);
      continue;
    }
    if (ch == '/' && i + 1 < s.size() && s[i + 1] == '/') {
      while (i < s.size() && s[i] != '\n') advance(1);
      continue;
    }
    if (ch == '/' && i + 1 < s.size() && s[i + 1] == '*') {
      const int l0 = line, c0 = col;
      advance(2);
      while (i < s.size() && !(s[i] == '*' && i + 1 < s.size() && s[i + 1] == '/')) advance(1);
      if (i >= s.size()) throw QasmError(l0, c0, "unterminated comment");
      advance(2);
      continue;
    }
    Token t;
    t.line = line;
    t.col = col;
    if (is_alpha(ch)) {
      std::size_t j = i;
      while (j < s.size() && (is_alpha(s[j]) || is_digit(s[j]))) ++j;
      t.kind = Tok::Ident;
      t.text = std::string(s.substr(i, j - i));
      advance(j - i);
    } else if (is_digit(ch) || (ch == '.' && i + 1 < s.size() && is_digit(s[i + 1]))) {
      std::size_t j = i;
      bool real = false;
      while (j < s.size() && is_digit(s[j])) ++j;
      if (j < s.size() && s[j] == '.') {
        real = true;
        ++j;
        while (j < s.size() && is_digit(s[j])) ++j;
      }
      if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
        std::size_t k = j + 1;
        if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
        if (k >= s.size() || !is_digit(s[k]))
          throw QasmError(line, col + int(j - i), "malformed number: exponent has no digits");
        while (k < s.size() && is_digit(s[k])) ++k;
        j = k;
        real = true;
      }
      if (j < s.size() && is_alpha(s[j]))
        throw QasmError(line, col + int(j - i), "malformed number");
      t.kind = real ? Tok::Real : Tok::Int;
      t.text = std::string(s.substr(i, j - i));
      advance(j - i);
    } else if (ch == '"') {
      std::size_t j = i + 1;
      while (j < s.size() && s[j] != '"' && s[j] != '\n') ++j;
      if (j >= s.size() || s[j] != '"') throw QasmError(line, col, "unterminated string");
      t.kind = Tok::String;
      t.text = std::string(s.substr(i + 1, j - i - 1));
      advance(j + 1 - i);
    } else {
      t.kind = Tok::Sym;
      if ((ch == '-' && i + 1 < s.size() && s[i + 1] == '>') ||
          (ch == '=' && i + 1 < s.size() && s[i + 1] == '=')) {
        t.text = std::string(s.substr(i, 2));
        advance(2);
      } else if (std::string_view(";,()[]{}+-*/^").find(ch) != std::string_view::npos) {
        t.text = std::string(1, ch);
        advance(1);
      } else {
        const unsigned char u = static_cast<unsigned char>(ch);
        char buf[64];
        if (u >= 0x20 && u < 0x7f)
          std::snprintf(buf, sizeof buf, "unexpected character '%c'", ch);
        else
          std::snprintf(buf, sizeof buf, "unexpected byte 0x%02x", unsigned(u));
        throw QasmError(line, col, buf);
      }
    }
    t.end_line = line;
    t.end_col = col;
    out.push_back(std::move(t));
  }
  Token end;
  end.kind = Tok::End;
  end.line = line;
  end.col = col;
  out.push_back(end);
  return out;
}

// One qubit argument: a single qubit (index >= 0) or a whole register (index -1).
struct QArg {
  int reg = 0;
  int index = -1;
  int qubit = -1;  // inside a gate body: the global qubit a formal argument stands for
  Token tok;  // where it starts
};

// A user `gate` definition: its formal parameters and qubits, and where its
// body's tokens are (expanded at each call, like a macro).
struct GateDef {
  std::vector<std::string> params, qubits;
  std::size_t body_begin = 0, body_end = 0;  // token indices: first after '{', the '}'
};

// Gates one file may expand to (user gates can nest exponentially).
constexpr std::size_t kQasmMaxGates = std::size_t(1) << 20;

enum class G {
  U3, U2, U1, U0, CU4, X, I, Y, Z, H, S, Sdg, T, Tdg, SX, SXdg, RX, RY, RZ,
  CX, CY, CZ, CH, CSX, CCX, CRX, CRY, CRZ, CU1, CU3, Swap, CSwap, RZZ, RXX, RCCX, RC3X, C3X, C3SX, C4X
};

struct GateSpec {
  G g;
  int n_angles;
  int n_qubits;
  bool builtin;  // U and CX: available without qelib1.inc
};

const std::unordered_map<std::string, GateSpec>& gate_table() {
  static const std::unordered_map<std::string, GateSpec> t = {
      {"U", {G::U3, 3, 1, true}},      {"CX", {G::CX, 0, 2, true}},
      {"u3", {G::U3, 3, 1, false}},    {"u", {G::U3, 3, 1, false}},
      {"u2", {G::U2, 2, 1, false}},    {"u1", {G::U1, 1, 1, false}},
      {"p", {G::U1, 1, 1, false}},     {"u0", {G::U0, 1, 1, false}},
      {"cx", {G::CX, 0, 2, false}},    {"id", {G::I, 0, 1, false}},
      {"x", {G::X, 0, 1, false}},      {"y", {G::Y, 0, 1, false}},
      {"z", {G::Z, 0, 1, false}},      {"h", {G::H, 0, 1, false}},
      {"s", {G::S, 0, 1, false}},      {"sdg", {G::Sdg, 0, 1, false}},
      {"t", {G::T, 0, 1, false}},      {"tdg", {G::Tdg, 0, 1, false}},
      {"sx", {G::SX, 0, 1, false}},    {"sxdg", {G::SXdg, 0, 1, false}},
      {"rx", {G::RX, 1, 1, false}},    {"ry", {G::RY, 1, 1, false}},
      {"rz", {G::RZ, 1, 1, false}},    {"cz", {G::CZ, 0, 2, false}},
      {"cy", {G::CY, 0, 2, false}},    {"ch", {G::CH, 0, 2, false}},
      {"csx", {G::CSX, 0, 2, false}},  {"ccx", {G::CCX, 0, 3, false}},
      {"crx", {G::CRX, 1, 2, false}},  {"cry", {G::CRY, 1, 2, false}},
      {"crz", {G::CRZ, 1, 2, false}},  {"cu1", {G::CU1, 1, 2, false}},
      {"cp", {G::CU1, 1, 2, false}},   {"cu3", {G::CU3, 3, 2, false}},
      {"cu", {G::CU4, 4, 2, false}},   {"swap", {G::Swap, 0, 2, false}},
      {"cswap", {G::CSwap, 0, 3, false}}, {"rzz", {G::RZZ, 1, 2, false}},
      {"rxx", {G::RXX, 1, 2, false}},  {"rccx", {G::RCCX, 0, 3, false}},
      {"c3x", {G::C3X, 0, 4, false}},  {"c3sqrtx", {G::C3SX, 0, 4, false}},
      {"c4x", {G::C4X, 0, 5, false}},  {"rc3x", {G::RC3X, 0, 4, false}},
  };
  return t;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : toks_(tokenize(text)) {}

  ParsedQasm run() {
    header();
    while (peek().kind != Tok::End) statement();
    out_.circuit.n_params = int(out_.theta.size());
    analyse();
    return std::move(out_);
  }

 private:
  std::vector<Token> toks_;
  std::size_t pos_ = 0;
  ParsedQasm out_;
  bool qelib_ = false;
  int depth_ = 0;
  std::unordered_map<std::string, GateDef> defs_;
  // The gate bodies being expanded, innermost last: the values of the formal
  // parameters and the global qubits of the formal qubit arguments.
  struct Scope {
    const GateDef* def;
    std::vector<double> values;
    std::vector<int> qubits;
  };
  std::vector<Scope> scopes_;
  // Qubits some gate has acted on, as of gate index scanned_ (for `reset`).
  std::vector<char> touched_;
  std::size_t scanned_ = 0;
  // The top-level statement being read: its condition (-1: none) and where
  // its gates not yet in a step begin.
  int cond_reg_ = -1;
  std::uint64_t cond_value_ = 0;
  std::size_t run_begin_ = 0;

  const Token& peek(std::size_t k = 0) const {
    return toks_[std::min(pos_ + k, toks_.size() - 1)];
  }
  const Token& next() {
    const Token& t = peek();
    if (pos_ < toks_.size() - 1) ++pos_;
    return t;
  }
  [[noreturn]] static void fail(const Token& t, const std::string& msg) {
    throw QasmError(t.line, t.col, msg);
  }
  bool is_sym(const char* s, std::size_t k = 0) const {
    return peek(k).kind == Tok::Sym && peek(k).text == s;
  }
  const Token& expect_sym(const char* s) {
    if (!is_sym(s)) {
      // A ';' missing at the end of a line is reported where it belongs.
      if (std::string_view(s) == ";" && pos_ > 0 && peek().line > toks_[pos_ - 1].end_line) {
        const Token& prev = toks_[pos_ - 1];
        throw QasmError(prev.end_line, prev.end_col,
                        "expected ';' after " + show(prev) + " (found " + show(peek()) +
                            " on line " + std::to_string(peek().line) + ")");
      }
      fail(peek(), std::string("expected '") + s + "', found " + show(peek()));
    }
    return next();
  }
  const Token& expect_ident(const char* what) {
    if (peek().kind != Tok::Ident)
      fail(peek(), std::string("expected ") + what + ", found " + show(peek()));
    return next();
  }
  // A non-negative integer no larger than `limit`.
  long expect_int(const char* what, long limit) {
    const Token& t = peek();
    if (t.kind != Tok::Int) fail(t, std::string("expected ") + what + ", found " + show(t));
    std::size_t nz = t.text.find_first_not_of('0');
    if (nz == std::string::npos) nz = t.text.size() - 1;  // "000" -> "0"
    const std::string digits = t.text.substr(nz);
    if (digits.size() > 12 || std::stol(digits) > limit)
      fail(t, std::string(what) + " " + show(t) + " is too large (limit " +
                  std::to_string(limit) + ")");
    next();
    return std::stol(digits);
  }

  void header() {
    const Token& t = peek();
    if (t.kind != Tok::Ident || t.text != "OPENQASM")
      fail(t, "missing header: the file must start with 'OPENQASM 2.0;'");
    next();
    const Token& v = peek();
    if (v.kind != Tok::Real && v.kind != Tok::Int)
      fail(v, "expected a version number after OPENQASM, found " + show(v));
    if (std::strtod(v.text.c_str(), nullptr) != 2.0)
      fail(v, "unsupported OpenQASM version " + v.text + " (only 2.0 is supported)");
    next();
    expect_sym(";");
  }

  int find_register(const std::vector<QasmRegister>& regs, const std::string& name) const {
    for (std::size_t i = 0; i < regs.size(); ++i)
      if (regs[i].name == name) return int(i);
    return -1;
  }

  void statement() {
    const Token& t = peek();
    if (t.kind != Tok::Ident) fail(t, "expected a statement, found " + show(t));
    const std::string& w = t.text;
    if (w == "OPENQASM") fail(t, "duplicate OPENQASM header");
    if (w == "include") return include();
    if (w == "qreg" || w == "creg") return declare(w == "qreg");
    if (w == "barrier") return barrier();
    if (w == "measure") return measure(-1, 0);
    if (w == "reset") return reset(-1, 0);
    if (w == "if") return conditional();
    if (w == "gate") return define();
    if (w == "opaque")
      fail(t, "opaque gate" + (peek(1).kind == Tok::Ident ? " '" + peek(1).text + "'" : std::string()) +
                  " has no definition: qmoe cannot simulate it");
    return gates(-1, 0);
  }

  // A gate call at the top level (possibly under `if`): its expanded gates
  // become a Gates step (several when a gate body resets a qubit).
  void gates(int cond_reg, std::uint64_t cond_value) {
    cond_reg_ = cond_reg;
    cond_value_ = cond_value;
    run_begin_ = out_.circuit.gates.size();
    gate_call();
    flush_gates();
    cond_reg_ = -1;
    cond_value_ = 0;
  }

  // The gates since run_begin_ as a step under the current condition, merged
  // with the previous step when both are unconditioned gates.
  void flush_gates() {
    const std::size_t end = out_.circuit.gates.size();
    if (end == run_begin_) return;  // e.g. a user gate of barriers only
    if (cond_reg_ < 0 && !out_.ops.empty()) {
      QasmOp& last = out_.ops.back();
      if (last.kind == QasmOp::Kind::Gates && last.cond_reg < 0 && last.end == run_begin_) {
        last.end = run_begin_ = end;
        return;
      }
    }
    QasmOp op;
    op.begin = run_begin_;
    op.end = end;
    op.cond_reg = cond_reg_;
    op.cond_value = cond_value_;
    out_.ops.push_back(std::move(op));
    run_begin_ = end;
  }

  // A Reset step under the current condition. Qubits no gate has touched are
  // still |0>: an unconditioned reset of them does nothing and is dropped.
  void add_reset(const std::vector<int>& qubits) {
    const std::vector<char>& used = touched();
    QasmOp op;
    op.kind = QasmOp::Kind::Reset;
    op.cond_reg = cond_reg_;
    op.cond_value = cond_value_;
    for (int q : qubits)
      if (cond_reg_ >= 0 || used[std::size_t(q)]) op.qubits.push_back(q);
    if (!op.qubits.empty()) out_.ops.push_back(std::move(op));
  }

  // if (creg == n) followed by one gate call, measure or reset.
  void conditional() {
    next();
    expect_sym("(");
    const Token& reg = peek();
    if (reg.kind != Tok::Ident) fail(reg, "expected a classical register name, found " + show(reg));
    const int r = find_register(out_.cregs, reg.text);
    if (r < 0) {
      if (find_register(out_.qregs, reg.text) >= 0)
        fail(reg, "'" + reg.text + "' is a quantum register; 'if' tests a classical one");
      fail(reg, "unknown classical register '" + reg.text + "'");
    }
    next();
    if (is_sym("["))
      fail(peek(), "'if' tests a whole classical register in OpenQASM 2.0 ('if (" + reg.text +
                       " == n)'), not one bit");
    expect_sym("==");
    const Token& v = peek();
    if (v.kind != Tok::Int) fail(v, "expected a non-negative integer after '==', found " + show(v));
    std::uint64_t value = 0;
    for (char ch : v.text) {
      const std::uint64_t d = std::uint64_t(ch - '0');
      if (value > (UINT64_MAX - d) / 10) fail(v, "value " + show(v) + " is too large (limit 2^64 - 1)");
      value = value * 10 + d;
    }
    next();
    expect_sym(")");
    const Token& t = peek();
    if (t.kind == Tok::Ident && t.text == "measure") return measure(r, value);
    if (t.kind == Tok::Ident && t.text == "reset") return reset(r, value);
    if (t.kind != Tok::Ident || t.text == "if" || t.text == "barrier" || t.text == "qreg" || t.text == "creg" ||
        t.text == "gate" || t.text == "opaque" || t.text == "include" || t.text == "OPENQASM")
      fail(t, "expected a gate call, measure or reset after 'if (...)', found " + show(t));
    gates(r, value);
  }

  // reset q[i]; / reset q;
  void reset(int cond_reg, std::uint64_t cond_value) {
    next();
    const QArg a = argument(true);
    expect_sym(";");
    const QasmRegister& qr = out_.qregs[std::size_t(a.reg)];
    std::vector<int> qubits;
    for (int i = 0; i < qr.size; ++i)
      if (a.index < 0 || i == a.index) qubits.push_back(qr.offset + i);
    cond_reg_ = cond_reg;
    cond_value_ = cond_value;
    add_reset(qubits);
    cond_reg_ = -1;
    cond_value_ = 0;
  }

  // `reset a;` in a gate body (not OpenQASM 2.0, but Qiskit's exporter writes
  // it, e.g. for initialize): ends the gate step so far, then a Reset step.
  void body_reset() {
    next();
    const QArg a = argument(true);
    expect_sym(";");
    flush_gates();
    add_reset({a.qubit});
  }

  // Which qubits the gates so far act on (target, second target or control).
  const std::vector<char>& touched() {
    touched_.resize(std::size_t(out_.circuit.n_qubits), 0);
    for (; scanned_ < out_.circuit.gates.size(); ++scanned_) {
      const Gate& g = out_.circuit.gates[scanned_];
      touched_[std::size_t(g.target)] = 1;
      if (g.target2 >= 0) touched_[std::size_t(g.target2)] = 1;
      for (const Control& c : g.controls) touched_[std::size_t(c.qubit)] = 1;
    }
    return touched_;
  }

  // Marks the measurements that can be read from the final state and decides
  // whether the program is dynamic (see ParsedQasm::dynamic), last step first.
  void analyse() {
    long n_bits = 0;
    for (const QasmRegister& r : out_.cregs) n_bits += r.size;
    std::vector<int> reg_of(std::size_t(n_bits), 0);
    for (std::size_t r = 0; r < out_.cregs.size(); ++r)
      for (int i = 0; i < out_.cregs[r].size; ++i) reg_of[std::size_t(out_.cregs[r].offset + i)] = int(r);
    std::vector<char> acted(std::size_t(out_.circuit.n_qubits), 0);  // a later gate or reset acts on it
    std::vector<char> tested(out_.cregs.size(), 0);                  // a later `if` reads it
    std::vector<char> written(std::size_t(n_bits), 0);               // a later mid-circuit measure writes it
    bool dynamic = false;
    for (auto op = out_.ops.rbegin(); op != out_.ops.rend(); ++op) {
      switch (op->kind) {
        case QasmOp::Kind::Gates:
          for (std::size_t k = op->begin; k < op->end; ++k) {
            const Gate& g = out_.circuit.gates[k];
            acted[std::size_t(g.target)] = 1;
            if (g.target2 >= 0) acted[std::size_t(g.target2)] = 1;
            for (const Control& c : g.controls) acted[std::size_t(c.qubit)] = 1;
          }
          break;
        case QasmOp::Kind::Reset:
          dynamic = true;
          for (int q : op->qubits) acted[std::size_t(q)] = 1;
          break;
        case QasmOp::Kind::Measure:
          op->at_end.assign(op->qubits.size(), false);
          for (std::size_t k = 0; k < op->qubits.size(); ++k) {
            const auto b = std::size_t(op->bits[k]);
            const bool at_end = op->cond_reg < 0 && !acted[std::size_t(op->qubits[k])] &&
                                !tested[std::size_t(reg_of[b])] && !written[b];
            op->at_end[k] = at_end;
            if (!at_end) dynamic = true;
          }
          for (std::size_t k = 0; k < op->qubits.size(); ++k)
            if (!op->at_end[k]) written[std::size_t(op->bits[k])] = 1;
          break;
      }
      if (op->cond_reg >= 0) {
        dynamic = true;
        tested[std::size_t(op->cond_reg)] = 1;
      }
    }
    out_.dynamic = dynamic;
  }

  // gate name(p, ...) a, b, ... { gate calls and barriers on a, b, ... }
  void define() {
    next();
    const Token name = expect_ident("a gate name");
    if (gate_table().count(name.text) || defs_.count(name.text))
      fail(name, "gate '" + name.text + "' is already defined");
    GateDef d;
    auto unique = [&](const Token& t, const std::vector<std::string>& a, const std::vector<std::string>& b) {
      if (std::count(a.begin(), a.end(), t.text) || std::count(b.begin(), b.end(), t.text))
        fail(t, "'" + t.text + "' is declared twice in gate '" + name.text + "'");
    };
    if (is_sym("(")) {
      next();
      if (!is_sym(")"))
        for (;;) {
          const Token& p = expect_ident("a parameter name");
          unique(p, d.params, d.qubits);
          d.params.push_back(p.text);
          if (!is_sym(",")) break;
          next();
        }
      expect_sym(")");
    }
    for (;;) {
      const Token& q = expect_ident("a qubit argument name");
      unique(q, d.params, d.qubits);
      d.qubits.push_back(q.text);
      if (!is_sym(",")) break;
      next();
    }
    expect_sym("{");
    d.body_begin = pos_;
    while (!is_sym("}")) {
      if (peek().kind == Tok::End) fail(peek(), "gate '" + name.text + "': missing '}' at the end of its body");
      if (is_sym("{")) fail(peek(), "unexpected '{' in the body of gate '" + name.text + "'");
      next();
    }
    d.body_end = pos_;
    next();
    defs_.emplace(name.text, std::move(d));
  }

  // One statement of a gate body: a gate call or a barrier.
  void body_statement() {
    const Token& t = peek();
    if (t.kind == Tok::Ident && t.text == "barrier") return barrier();
    if (t.kind == Tok::Ident && t.text == "reset") return body_reset();
    if (t.kind == Tok::Ident &&
        (t.text == "qreg" || t.text == "creg" || t.text == "measure" || t.text == "if" ||
         t.text == "gate" || t.text == "opaque" || t.text == "include"))
      fail(t, "'" + t.text + "' is not allowed in a gate body (only gate calls, barrier and reset)");
    gate_call();
  }

  void expand(const GateDef& d, std::vector<double> values, std::vector<int> qubits, const Token& at) {
    if (scopes_.size() >= 64) fail(at, "gate definitions nested too deeply (64 levels)");
    const std::size_t saved = pos_;
    scopes_.push_back({&d, std::move(values), std::move(qubits)});
    pos_ = d.body_begin;
    while (pos_ < d.body_end) body_statement();
    scopes_.pop_back();
    pos_ = saved;
  }

  void include() {
    next();
    const Token& f = peek();
    if (f.kind != Tok::String) fail(f, "expected a file name string after include, found " + show(f));
    if (f.text != "qelib1.inc")
      fail(f, "cannot include \"" + f.text + "\": only \"qelib1.inc\" is supported");
    next();
    expect_sym(";");
    qelib_ = true;
  }

  void declare(bool quantum) {
    next();
    const Token& name = expect_ident("a register name");
    if (gate_table().count(name.text) || name.text == "pi" || name.text == "OPENQASM")
      fail(name, "'" + name.text + "' is a reserved name");
    if (find_register(out_.qregs, name.text) >= 0 || find_register(out_.cregs, name.text) >= 0)
      fail(name, "register '" + name.text + "' is already declared");
    expect_sym("[");
    const Token size_tok = peek();
    const long size = expect_int("a register size", quantum ? kQasmMaxQubits : kQasmMaxCbits);
    if (size < 1) fail(size_tok, "a register must have at least one bit");
    expect_sym("]");
    expect_sym(";");
    QasmRegister r{name.text, int(size), 0};
    if (quantum) {
      r.offset = out_.circuit.n_qubits;
      if (r.offset + size > kQasmMaxQubits)
        fail(size_tok, "too many qubits: " + std::to_string(r.offset + size) + " (limit " +
                           std::to_string(kQasmMaxQubits) + ")");
      out_.circuit.n_qubits += int(size);
      out_.qregs.push_back(r);
    } else {
      long total = size;
      for (const auto& c : out_.cregs) total += c.size;
      r.offset = int(total - size);
      if (total > kQasmMaxCbits)
        fail(size_tok, "too many classical bits (limit " + std::to_string(kQasmMaxCbits) + ")");
      out_.cregs.push_back(r);
    }
  }

  // name or name[index], in a quantum (or classical) register.
  QArg argument(bool quantum) {
    const Token& name = peek();
    if (name.kind != Tok::Ident)
      fail(name, std::string("expected a ") + (quantum ? "qubit" : "classical bit") +
                     " argument, found " + show(name));
    QArg a;
    a.tok = name;
    if (quantum && !scopes_.empty()) {  // a formal qubit argument of the gate being expanded
      const Scope& sc = scopes_.back();
      const auto it = std::find(sc.def->qubits.begin(), sc.def->qubits.end(), name.text);
      if (it == sc.def->qubits.end()) fail(name, "unknown qubit '" + name.text + "' in a gate body");
      next();
      if (is_sym("[")) fail(peek(), "a gate body addresses its qubit arguments without an index");
      a.qubit = sc.qubits[std::size_t(it - sc.def->qubits.begin())];
      return a;
    }
    const auto& regs = quantum ? out_.qregs : out_.cregs;
    a.reg = find_register(regs, name.text);
    if (a.reg < 0) {
      if (find_register(quantum ? out_.cregs : out_.qregs, name.text) >= 0)
        fail(name, "'" + name.text + "' is a " + (quantum ? "classical" : "quantum") +
                       " register; expected a " + (quantum ? "quantum" : "classical") + " one");
      fail(name, std::string("unknown ") + (quantum ? "quantum" : "classical") + " register '" +
                     name.text + "'");
    }
    next();
    if (is_sym("[")) {
      next();
      const Token idx_tok = peek();
      const long size = regs[std::size_t(a.reg)].size;
      const long idx = expect_int("an index", 1L << 40);
      if (idx >= size)
        fail(idx_tok, "index " + std::to_string(idx) + " out of range for register '" +
                          name.text + "' of size " + std::to_string(size));
      a.index = int(idx);
      expect_sym("]");
    }
    return a;
  }

  std::vector<QArg> argument_list(bool quantum) {
    std::vector<QArg> args{argument(quantum)};
    while (is_sym(",")) {
      next();
      args.push_back(argument(quantum));
    }
    return args;
  }

  void barrier() {
    next();
    argument_list(true);
    expect_sym(";");
  }

  void measure(int cond_reg, std::uint64_t cond_value) {
    next();
    QArg q = argument(true);
    expect_sym("->");
    QArg c = argument(false);
    expect_sym(";");
    const bool qreg = q.index < 0, creg = c.index < 0;
    if (qreg != creg)
      fail(q.tok, "measure: both arguments must be registers or both single bits");
    if (qreg && out_.qregs[std::size_t(q.reg)].size != out_.cregs[std::size_t(c.reg)].size)
      fail(c.tok, "measure: registers '" + out_.qregs[std::size_t(q.reg)].name + "' and '" +
                      out_.cregs[std::size_t(c.reg)].name + "' differ in size");
    const QasmRegister &qr = out_.qregs[std::size_t(q.reg)], &cr = out_.cregs[std::size_t(c.reg)];
    QasmOp op;
    op.kind = QasmOp::Kind::Measure;
    op.cond_reg = cond_reg;
    op.cond_value = cond_value;
    if (qreg)
      for (int i = 0; i < qr.size; ++i) {
        out_.measured.push_back({qr.offset + i, long(cr.offset) + i});
        op.qubits.push_back(qr.offset + i);
        op.bits.push_back(long(cr.offset) + i);
      }
    else {
      out_.measured.push_back({qr.offset + q.index, long(cr.offset) + c.index});
      op.qubits.push_back(qr.offset + q.index);
      op.bits.push_back(long(cr.offset) + c.index);
    }
    out_.ops.push_back(std::move(op));
  }

  // ---- expressions ---------------------------------------------------------
  struct DepthGuard {
    Parser& p;
    DepthGuard(Parser& parser, const Token& t) : p(parser) {
      if (++p.depth_ > kQasmMaxDepth) fail(t, "expression nested too deeply");
    }
    ~DepthGuard() { --p.depth_; }
  };

  double expr() {  // nesting goes through unary(), which counts it
    double v = term();
    while (is_sym("+") || is_sym("-")) {
      const bool plus = next().text == "+";
      const double r = term();
      v = plus ? v + r : v - r;
    }
    return v;
  }
  double term() {
    double v = unary();
    while (is_sym("*") || is_sym("/")) {
      const bool mul = next().text == "*";
      const double r = unary();
      v = mul ? v * r : v / r;
    }
    return v;
  }
  double unary() {
    DepthGuard guard(*this, peek());
    if (is_sym("-")) {
      next();
      return -unary();
    }
    if (is_sym("+")) {
      next();
      return unary();
    }
    return power();
  }
  double power() {
    const double base = primary();
    if (is_sym("^")) {
      next();
      return std::pow(base, unary());  // right-associative, binds tighter than unary minus
    }
    return base;
  }
  double primary() {
    const Token& t = peek();
    if (t.kind == Tok::Int || t.kind == Tok::Real) {
      next();
      return std::strtod(t.text.c_str(), nullptr);
    }
    if (is_sym("(")) {
      next();
      const double v = expr();
      expect_sym(")");
      return v;
    }
    if (t.kind == Tok::Ident) {
      if (t.text == "pi") {
        next();
        return M_PI;
      }
      if (!scopes_.empty()) {  // a formal parameter of the gate being expanded
        const Scope& sc = scopes_.back();
        const auto it = std::find(sc.def->params.begin(), sc.def->params.end(), t.text);
        if (it != sc.def->params.end()) {
          next();
          return sc.values[std::size_t(it - sc.def->params.begin())];
        }
      }
      static const std::unordered_map<std::string, double (*)(double)> fns = {
          {"sin", [](double a) { return std::sin(a); }},
          {"cos", [](double a) { return std::cos(a); }},
          {"tan", [](double a) { return std::tan(a); }},
          {"exp", [](double a) { return std::exp(a); }},
          {"ln", [](double a) { return std::log(a); }},
          {"sqrt", [](double a) { return std::sqrt(a); }},
      };
      auto it = fns.find(t.text);
      if (it == fns.end()) fail(t, "unknown identifier " + show(t) + " in expression");
      next();
      if (!is_sym("("))
        fail(peek(), "expected '(' after function '" + t.text + "', found " + show(peek()));
      next();
      const double a = expr();
      expect_sym(")");
      return it->second(a);
    }
    fail(t, "expected an expression, found " + show(t));
  }

  // ---- gate calls ----------------------------------------------------------
  void gate_call() {
    const Token name = next();
    auto it = gate_table().find(name.text);
    const auto user = defs_.find(name.text);
    if (it == gate_table().end() && user == defs_.end()) fail(name, "unknown gate '" + name.text + "'");
    // A user gate's call: its formal parameters' values and qubit count.
    const GateSpec spec = user != defs_.end()
                              ? GateSpec{G::I, int(user->second.params.size()), int(user->second.qubits.size()), true}
                              : it->second;
    if (!spec.builtin && !qelib_)
      fail(name, "gate '" + name.text + "' needs 'include \"qelib1.inc\";'");
    std::vector<double> values;
    if (is_sym("(")) {
      const Token& open = next();
      if (!is_sym(")")) {
        for (;;) {
          const Token start = peek();
          const double v = expr();
          if (!std::isfinite(v)) fail(start, "expression does not evaluate to a finite number");
          values.push_back(v);
          if (is_sym(")")) break;
          if (!is_sym(",")) fail(peek(), "expected ',' or ')', found " + show(peek()));
          next();
        }
      }
      expect_sym(")");
      if (int(values.size()) != spec.n_angles)
        fail(open, "gate '" + name.text + "' takes " + std::to_string(spec.n_angles) +
                       " parameter(s), got " + std::to_string(values.size()));
    } else if (spec.n_angles > 0) {
      fail(peek(), "gate '" + name.text + "' takes " + std::to_string(spec.n_angles) +
                       " parameter(s); expected '('");
    }
    if (peek().kind != Tok::Ident)
      fail(peek(), "expected a qubit argument, found " + show(peek()));
    std::vector<QArg> args = argument_list(true);
    if (int(args.size()) != spec.n_qubits)
      fail(args.size() > std::size_t(spec.n_qubits) ? args[std::size_t(spec.n_qubits)].tok : peek(),
           "gate '" + name.text + "' takes " + std::to_string(spec.n_qubits) +
               " qubit argument(s), got " + std::to_string(args.size()));
    expect_sym(";");
    // Broadcasting: whole-register arguments must share one size.
    int reps = 1;
    const QArg* first_reg = nullptr;
    for (const QArg& a : args) {
      if (a.index >= 0 || a.qubit >= 0) continue;
      const int size = out_.qregs[std::size_t(a.reg)].size;
      if (!first_reg) {
        first_reg = &a;
        reps = size;
      } else if (size != reps) {
        fail(a.tok, "registers '" + out_.qregs[std::size_t(first_reg->reg)].name + "' and '" +
                        out_.qregs[std::size_t(a.reg)].name + "' differ in size");
      }
    }
    // A built-in gate's arguments become parameters (shared by broadcast copies).
    std::vector<int> pidx;
    if (user == defs_.end())
      for (double v : values) pidx.push_back(int(out_.theta.size())), out_.theta.push_back(v);
    for (int r = 0; r < reps; ++r) {
      std::vector<int> q;
      for (std::size_t k = 0; k < args.size(); ++k) {
        int qi = args[k].qubit;
        if (qi < 0) {
          const QasmRegister& reg = out_.qregs[std::size_t(args[k].reg)];
          qi = reg.offset + (args[k].index >= 0 ? args[k].index : r);
        }
        for (int prev : q)
          if (prev == qi) fail(args[k].tok, "gate '" + name.text + "': qubit used twice");
        q.push_back(qi);
      }
      if (user != defs_.end()) {
        expand(user->second, values, q, name);
        continue;
      }
      if (out_.circuit.gates.size() >= kQasmMaxGates)
        fail(name, "too many gates (more than " + std::to_string(kQasmMaxGates) + " after expanding user gates)");
      emit(spec.g, q, pidx);
    }
  }

  void add(GateKind kind, int target, std::vector<Control> ctl = {},
           std::array<Angle, 3> angles = {}) {
    add_gate(out_.circuit, make_gate(kind, target, std::move(ctl), angles));
  }

  void emit(G g, const std::vector<int>& q, const std::vector<int>& p) {
    auto P = [&](std::size_t k) { return Angle::param(p[k]); };
    auto C = [](double v) { return Angle::constant(v); };
    auto on = [&](std::size_t k) { return Control{q[k], true}; };
    switch (g) {
      case G::U3: return add(GateKind::U3, q[0], {}, {P(0), P(1), P(2)});
      case G::U2: return add(GateKind::U2, q[0], {}, {P(0), P(1)});
      case G::U1: return add(GateKind::U1, q[0], {}, {P(0)});
      case G::U0: return add(GateKind::I, q[0]);
      case G::X: return add(GateKind::X, q[0]);
      case G::I: return add(GateKind::I, q[0]);
      case G::Y: return add(GateKind::Y, q[0]);
      case G::Z: return add(GateKind::Z, q[0]);
      case G::H: return add(GateKind::H, q[0]);
      case G::S: return add(GateKind::S, q[0]);
      case G::Sdg: return add(GateKind::Sdg, q[0]);
      case G::T: return add(GateKind::T, q[0]);
      case G::Tdg: return add(GateKind::Tdg, q[0]);
      case G::SX: return add(GateKind::SX, q[0]);
      case G::SXdg: {
        Gate gt = make_gate(GateKind::Matrix, q[0]);
        gt.matrix = dagger(gate_matrix(GateKind::SX, nullptr));
        return add_gate(out_.circuit, gt);
      }
      case G::RX: return add(GateKind::RX, q[0], {}, {P(0)});
      case G::RY: return add(GateKind::RY, q[0], {}, {P(0)});
      case G::RZ: return add(GateKind::RZ, q[0], {}, {P(0)});
      case G::CX: return add(GateKind::X, q[1], {on(0)});
      case G::CY: return add(GateKind::Y, q[1], {on(0)});
      case G::CZ: return add(GateKind::Z, q[1], {on(0)});
      case G::CH: return add(GateKind::H, q[1], {on(0)});
      case G::CSX: return add(GateKind::SX, q[1], {on(0)});
      case G::CCX: return add(GateKind::X, q[2], {on(0), on(1)});
      case G::CRX: return add(GateKind::RX, q[1], {on(0)}, {P(0)});
      case G::CRY: return add(GateKind::RY, q[1], {on(0)}, {P(0)});
      case G::CRZ: return add(GateKind::RZ, q[1], {on(0)}, {P(0)});
      case G::CU1: return add(GateKind::U1, q[1], {on(0)}, {P(0)});
      case G::CU3: return add(GateKind::U3, q[1], {on(0)}, {P(0), P(1), P(2)});
      case G::CU4:  // qiskit cu(theta, phi, lambda, gamma): phase gamma on the control
        add(GateKind::U1, q[0], {}, {P(3)});
        return add(GateKind::U3, q[1], {on(0)}, {P(0), P(1), P(2)});
      case G::Swap: {
        Gate gt = make_gate(GateKind::Swap, q[0]);
        gt.target2 = q[1];
        return add_gate(out_.circuit, gt);
      }
      case G::CSwap: {
        Gate gt = make_gate(GateKind::Swap, q[1], {on(0)});
        gt.target2 = q[2];
        return add_gate(out_.circuit, gt);
      }
      case G::RZZ:  // exp(-i t/2 Z(x)Z)
        add(GateKind::X, q[1], {on(0)});
        add(GateKind::RZ, q[1], {}, {P(0)});
        return add(GateKind::X, q[1], {on(0)});
      case G::RXX:  // exp(-i t/2 X(x)X)
        add(GateKind::H, q[0]);
        add(GateKind::H, q[1]);
        add(GateKind::X, q[1], {on(0)});
        add(GateKind::RZ, q[1], {}, {P(0)});
        add(GateKind::X, q[1], {on(0)});
        add(GateKind::H, q[0]);
        return add(GateKind::H, q[1]);
      case G::RCCX:  // qelib1's relative-phase Toffoli, gate by gate
        add(GateKind::U2, q[2], {}, {C(0), C(M_PI)});
        add(GateKind::U1, q[2], {}, {C(M_PI / 4)});
        add(GateKind::X, q[2], {on(1)});
        add(GateKind::U1, q[2], {}, {C(-M_PI / 4)});
        add(GateKind::X, q[2], {on(0)});
        add(GateKind::U1, q[2], {}, {C(M_PI / 4)});
        add(GateKind::X, q[2], {on(1)});
        add(GateKind::U1, q[2], {}, {C(-M_PI / 4)});
        return add(GateKind::U2, q[2], {}, {C(0), C(M_PI)});
      case G::RC3X: {  // qelib1's relative-phase 3-controlled X, gate by gate (Qiskit writes it)
        const auto h = [&] { add(GateKind::U2, q[3], {}, {C(0), C(M_PI)}); };
        const auto t = [&](double sign) { add(GateKind::U1, q[3], {}, {C(sign * M_PI / 4)}); };
        const auto cx = [&](std::size_t k) { add(GateKind::X, q[3], {on(k)}); };
        h(); t(1); cx(2); t(-1); h();
        cx(0); t(1); cx(1); t(-1); cx(0); t(1); cx(1); t(-1);
        h(); t(1); cx(2); t(-1); h();
        return;
      }
      case G::C3X: return add(GateKind::X, q[3], {on(0), on(1), on(2)});
      case G::C3SX: return add(GateKind::SX, q[3], {on(0), on(1), on(2)});
      case G::C4X: return add(GateKind::X, q[4], {on(0), on(1), on(2), on(3)});
    }
  }
};

}  // namespace

ParsedQasm parse_qasm(std::string_view text) { return Parser(text).run(); }

namespace {
// bits: '0' / '1' (or 0 / 1) per global classical bit.
template <class Bits>
std::string register_string(const ParsedQasm& p, const Bits& bits) {
  std::string out;
  for (auto r = p.cregs.rbegin(); r != p.cregs.rend(); ++r) {
    if (!out.empty()) out += ' ';
    for (int i = r->size - 1; i >= 0; --i) out += bits[std::size_t(r->offset + i)] & 1 ? '1' : '0';
  }
  return out;
}
}  // namespace

std::string classical_bits(const ParsedQasm& p, std::uint64_t state) {
  long total = 0;
  for (const QasmRegister& r : p.cregs) total += r.size;
  std::string bits(std::size_t(total), '0');  // global bit order
  for (const auto& [q, b] : p.measured) bits[std::size_t(b)] = ((state >> q) & 1) ? '1' : '0';
  return register_string(p, bits);
}

std::string classical_bits(const ParsedQasm& p, const std::vector<char>& bits) {
  return register_string(p, bits);
}

}  // namespace qmoe
