// PauliString (pauli_string.hpp): parsing and printing.
#include "grad/pauli_string.hpp"

#include <cctype>
#include <stdexcept>

namespace qmoe {

PauliString PauliString::parse(const std::string& text) {
  PauliString p;
  std::size_t i = 0;
  bool named = false;
  auto fail = [&](const std::string& why) {
    throw std::invalid_argument("Pauli string '" + text + "': " + why);
  };
  while (i < text.size()) {
    if (std::isspace(static_cast<unsigned char>(text[i]))) { ++i; continue; }
    const char letter = char(std::toupper(static_cast<unsigned char>(text[i++])));
    if (letter != 'X' && letter != 'Y' && letter != 'Z' && letter != 'I') fail("expected X, Y, Z or I");
    std::size_t j = i;
    while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
    if (j == i || j - i > 2) fail("expected a qubit number after the letter");
    const int q = std::stoi(text.substr(i, j - i));
    i = j;
    if (q > 62) fail("qubit number too large");
    named = true;
    const std::uint64_t bit = std::uint64_t(1) << q;
    if ((p.x | p.z) & bit) fail("qubit " + std::to_string(q) + " named twice");
    if (letter == 'X' || letter == 'Y') p.x |= bit;
    if (letter == 'Z' || letter == 'Y') p.z |= bit;
  }
  if (!named) fail("empty (the identity is I0)");
  return p;
}

std::string PauliString::str() const {
  std::string s;
  for (int q = 0; q < 63; ++q) {
    const bool bx = (x >> q) & 1, bz = (z >> q) & 1;
    if (!bx && !bz) continue;
    if (!s.empty()) s += ' ';
    s += (bx && bz) ? 'Y' : bx ? 'X' : 'Z';
    s += std::to_string(q);
  }
  return s.empty() ? "I" : s;
}

}  // namespace qmoe
