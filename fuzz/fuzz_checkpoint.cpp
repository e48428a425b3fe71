// libFuzzer target for the checkpoint reader (what `eval`, `inspect` and
// `train --resume` load): arbitrary bytes are parsed as JSON and read as a
// checkpoint, as load_checkpoint does. Every input must be accepted or refused
// with std::runtime_error / std::invalid_argument (one line in qmoe's words);
// a raw library exception (nlohmann::json's, std::bad_alloc, std::length_error)
// escaping, a crash, a sanitizer report, a hang or an allocation without bound
// is a finding. An accepted checkpoint must write back to JSON that reads again.
//   scripts/run-fuzz.sh 600 checkpoint   (seeds fuzz/corpus/checkpoint/, fuzz/checkpoint.dict)
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "train/checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;  // load_checkpoint: "damaged (not valid JSON)"
  qmoe::train::Checkpoint c;
  try {
    c = qmoe::train::checkpoint_from_json(j);
  } catch (const std::runtime_error&) {
    return 0;
  } catch (const std::invalid_argument&) {
    return 0;
  }
  // Accepted: what save_checkpoint would write must load again.
  qmoe::train::checkpoint_from_json(nlohmann::json::parse(qmoe::train::to_json(c).dump()));
  return 0;
}
