// Observables: Pauli strings as bit masks, parsed from text like "Z0 Z3".
#pragma once

#include <cstdint>
#include <string>

namespace qmoe {

// A Pauli string as bit masks (X on x, Z on z, Y where both), e.g. "Z0 Z3", "X1 Y2".
struct PauliString {
  std::uint64_t x = 0, z = 0;
  static PauliString parse(const std::string& text);  // throws std::invalid_argument
  static PauliString Z(int q) { return {0, std::uint64_t(1) << q}; }
  bool is_diagonal() const { return x == 0; }
  std::string str() const;
};

}  // namespace qmoe
