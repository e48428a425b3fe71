// libFuzzer target for a run's settings as JSON (config.json's and a
// checkpoint's "model" and "train" objects, experiments/common.json, and an
// experiment cell's "config" overrides, merged onto a default model as
// `qmoe reproduce` merges them onto common.json's): parsed,
// read by ModelConfig::from_json and TrainConfig::from_json, and an accepted
// model built, as every loader does. Each input must be accepted or refused
// with std::runtime_error / std::invalid_argument; a raw library exception, a
// crash, a sanitizer report, a hang or an allocation without bound is a
// finding. An accepted config must survive to_json -> from_json unchanged.
//   scripts/run-fuzz.sh 600 config   (seeds fuzz/corpus/config/, fuzz/config.dict)
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "model/model.hpp"
#include "train/trainer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return 0;
  try {
    if (j.contains("model")) {
      const qmoe::model::ModelConfig mc = qmoe::model::ModelConfig::from_json(j["model"]);
      const qmoe::model::Model m = qmoe::model::build_model(mc);
      if (m.n_params() < 0) std::abort();
      if (qmoe::model::ModelConfig::from_json(mc.to_json()).to_json() != mc.to_json()) std::abort();
    }
    if (j.contains("config") && j["config"].is_object()) {  // an experiment cell (experiments/specialisation/)
      nlohmann::json merged = qmoe::model::ModelConfig{}.to_json();
      merged.merge_patch(j["config"]);
      const qmoe::model::Model m = qmoe::model::build_model(qmoe::model::ModelConfig::from_json(merged));
      if (m.n_params() < 0) std::abort();
    }
    if (j.contains("train")) {
      const qmoe::train::TrainConfig tc = qmoe::train::TrainConfig::from_json(j["train"]);
      if (qmoe::train::TrainConfig::from_json(tc.to_json()).to_json() != tc.to_json()) std::abort();
    }
  } catch (const std::runtime_error&) {
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
