// libFuzzer target for the CSV reader (features, then a label, per line):
// every input must parse or throw std::runtime_error, and what parses must be
// a consistent data set (n x features values, every label a class index).
//   scripts/run-fuzz.sh 600 csv   (seeds fuzz/corpus/csv/, dictionary fuzz/csv.dict)
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "data/data.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const qmoe::data::Dataset d =
        qmoe::data::parse_csv(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    if (d.x.size() != d.size() * static_cast<std::size_t>(d.n_features)) std::abort();
    for (int y : d.y)
      if (y < 0 || y >= d.n_classes) std::abort();
  } catch (const std::runtime_error&) {
  }
  return 0;
}
