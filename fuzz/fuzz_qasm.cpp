// libFuzzer target for the OpenQASM 2.0 reader (and the writer on what it
// accepts): any input must either parse or throw QasmError, never crash, hang
// or allocate without bound; an accepted circuit must survive write -> parse
// with the same gate count structure (same qubits, parameters as numbers).
// A small dynamic program (reset, if, mid-circuit measurement) is also run,
// exactly and on a few shots: expectations in [-1, 1], every shot counted.
//   scripts/run-fuzz.sh 600 qasm   (seeds fuzz/corpus/qasm/, dictionary fuzz/qasm.dict)
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "circuit/qasm.hpp"
#include "circuit/qasm_dynamic.hpp"

namespace {

void run_dynamic(const qmoe::ParsedQasm& p) {
  long bits = 0;
  for (const auto& r : p.cregs) bits += r.size;
  if (p.circuit.n_qubits > 4 || p.circuit.gates.size() > 2000 || p.ops.size() > 200 || bits > 64) return;
  qmoe::DynamicLimits lim;
  lim.max_branches = 64;
  try {
    for (double z : qmoe::dynamic_expval_z<double>(p, lim))
      if (!(std::abs(z) <= 1 + 1e-9)) std::abort();
  } catch (const qmoe::QasmBranchLimit&) {
  }
  const qmoe::DynamicShots r = qmoe::dynamic_shots<double>(p, 8, 1, true, lim);
  long total = 0;
  for (const auto& kv : r.counts) total += kv.second;
  if (total != 8 || r.branches > 8) std::abort();
  for (long ones : r.ones)
    if (ones < 0 || ones > 8) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  qmoe::ParsedQasm p;
  try {
    p = qmoe::parse_qasm(text);
  } catch (const qmoe::QasmError& e) {
    if (e.line() < 1 || e.column() < 1) std::abort();
    return 0;
  }
  if (p.circuit.n_qubits > qmoe::kQasmMaxQubits) std::abort();
  if (p.circuit.n_params != int(p.theta.size())) std::abort();
  if (p.circuit.n_qubits < 1 || p.circuit.gates.size() > 20000) return 0;
  if (p.dynamic) run_dynamic(p);
  // Round trip: what the writer emits must parse again, on as many qubits.
  const std::string out = qmoe::write_qasm(p.circuit, p.theta, nullptr);
  const qmoe::ParsedQasm q = qmoe::parse_qasm(out);  // throws (crash) if invalid
  if (q.circuit.n_qubits != p.circuit.n_qubits) std::abort();
  return 0;
}
