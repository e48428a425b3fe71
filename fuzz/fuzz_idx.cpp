// libFuzzer target for the IDX reader (the MNIST container, raw or gzip):
// every input must parse or throw std::runtime_error, and what parses must
// have as many bytes as its dimensions say. The size limit is small (16 MiB)
// so that a header claiming a huge array would show up as an out-of-memory.
//   scripts/run-fuzz.sh 600 idx   (seeds fuzz/corpus/idx/)
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#include "data/idx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const qmoe::data::IdxArray a = qmoe::data::parse_idx(data, size, "fuzz", std::size_t(1) << 24);
    std::size_t n = a.dims.empty() ? 0 : 1;
    for (auto d : a.dims) n *= d;
    if (n != a.data.size()) std::abort();  // shape and payload must agree
  } catch (const std::runtime_error&) {
  }
  return 0;
}
