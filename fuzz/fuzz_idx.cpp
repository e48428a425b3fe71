// libFuzzer target for the IDX reader (raw and gzip) and the CSV parser.
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
//       fuzz/fuzz_idx.cpp -lz -o fuzz_idx && ./fuzz_idx -max_total_time=300 corpus/
// (or cmake -DQMOE_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++). The data sources are
// compiled into this file so that they carry the fuzzer's coverage
// instrumentation; nothing from qmoe_core is then needed at link time.
//
// First byte selects the target: even -> parse_idx, odd -> parse_csv.
// Every input must either parse or throw std::runtime_error; the size limit
// is small so that a header claiming huge sizes would show up as an OOM.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "data/data.cpp"
#include "data/idx.cpp"
#include "data/sha256.cpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  ++data;
  --size;
  try {
    if (mode % 2 == 0) {
      qmoe::data::IdxArray a = qmoe::data::parse_idx(data, size, "fuzz", std::size_t(1) << 24);
      std::size_t n = a.dims.empty() ? 0 : 1;
      for (auto d : a.dims) n *= d;
      if (n != a.data.size()) __builtin_trap();  // shape and payload must agree
    } else {
      qmoe::data::Dataset d = qmoe::data::parse_csv(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
      if (d.x.size() != d.size() * static_cast<std::size_t>(d.n_features)) __builtin_trap();
      for (int y : d.y)
        if (y < 0 || y >= d.n_classes) __builtin_trap();
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
