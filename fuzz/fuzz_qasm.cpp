// libFuzzer target for the OpenQASM 2.0 reader (and the writer on what it
// accepts): any input must either parse or throw QasmError, never crash, hang
// or allocate without bound; an accepted circuit must survive write -> parse
// with the same gate count structure (same qubits, parameters as numbers).
//   scripts/run-fuzz.sh 600 qasm   (seeds fuzz/corpus/qasm/, dictionary fuzz/qasm.dict)
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "circuit/qasm.hpp"

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
  // Round trip: what the writer emits must parse again, on as many qubits.
  const std::string out = qmoe::write_qasm(p.circuit, p.theta, nullptr);
  const qmoe::ParsedQasm q = qmoe::parse_qasm(out);  // throws (crash) if invalid
  if (q.circuit.n_qubits != p.circuit.n_qubits) std::abort();
  return 0;
}
