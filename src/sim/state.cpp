// Making a state and copying parts of it (contracts in state.hpp).
#include <algorithm>
#include <bit>
#include <stdexcept>
#include <string>

#include "sim/pair_loop.hpp"
#include "sim/state.hpp"

namespace qmoe::sim {

using detail::controlled_index;
using detail::controlled_rows;

template <class T>
State<T> make_state(int n_qubits, int batch) {
  if (n_qubits < 1 || n_qubits > 40)
    throw std::invalid_argument("state: qubit count must be 1..40, got " + std::to_string(n_qubits));
  if (batch < 1) throw std::invalid_argument("state: batch must be >= 1");
  State<T> s;
  s.n_qubits = n_qubits;
  s.batch = batch;
  s.re.assign(s.dim() * std::size_t(batch), T(0));
  s.im.assign(s.dim() * std::size_t(batch), T(0));
  for (int b = 0; b < batch; ++b) s.re[b] = T(1);
  return s;
}

template <class T>
void set_zero_state(State<T>& s) {
  std::fill(s.re.begin(), s.re.end(), T(0));
  std::fill(s.im.begin(), s.im.end(), T(0));
  std::fill(s.re.begin(), s.re.begin() + s.batch, T(1));
}

template <class T>
void copy_controlled(const State<T>& s, Controls c, State<T>& part) {
  const std::size_t rows = controlled_rows(s.n_qubits, c), B = std::size_t(s.batch);
  part.n_qubits = s.n_qubits - std::popcount(c.mask);
  part.batch = s.batch;
  part.re.resize(rows * B);
  part.im.resize(rows * B);
  for (std::size_t h = 0; h < rows; ++h) {
    const std::size_t i = controlled_index(h, c);
    std::copy_n(s.re.data() + i * B, B, part.re.data() + h * B);
    std::copy_n(s.im.data() + i * B, B, part.im.data() + h * B);
  }
}

template <class T>
void restore_controlled(const State<T>& part, Controls c, State<T>& s) {
  const std::size_t rows = controlled_rows(s.n_qubits, c), B = std::size_t(s.batch);
  if (part.batch != s.batch || part.re.size() != rows * B || part.im.size() != rows * B)
    throw std::invalid_argument("restore_controlled: part does not match the state");
  for (std::size_t h = 0; h < rows; ++h) {
    const std::size_t i = controlled_index(h, c);
    std::copy_n(part.re.data() + h * B, B, s.re.data() + i * B);
    std::copy_n(part.im.data() + h * B, B, s.im.data() + i * B);
  }
}

#define QMOE_INSTANTIATE(T)                                                 \
  template State<T> make_state<T>(int, int);                                \
  template void set_zero_state<T>(State<T>&);                               \
  template void copy_controlled<T>(const State<T>&, Controls, State<T>&);   \
  template void restore_controlled<T>(const State<T>&, Controls, State<T>&);
QMOE_INSTANTIATE(double)
QMOE_INSTANTIATE(float)

}  // namespace qmoe::sim
