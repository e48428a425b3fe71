#include "train/train_state.hpp"

#include <cmath>
#include <stdexcept>

#include "model/json_integer.hpp"

namespace qmoe::train {

using nlohmann::json;

GradientMethod parse_gradient_method(std::string_view s) {
  if (s == "adjoint") return GradientMethod::Adjoint;
  if (s == "param-shift") return GradientMethod::ParamShift;
  throw std::invalid_argument("gradient must be adjoint or param-shift, got '" + std::string(s) + "'");
}

const char* to_string(GradientMethod m) { return m == GradientMethod::ParamShift ? "param-shift" : "adjoint"; }

json TrainConfig::to_json() const {
  json j{{"epochs", epochs}, {"batch", batch}, {"lr", lr}, {"seed", seed}, {"gradient", to_string(gradient)},
         {"chunk", chunk}};
  j["shots"] = shots;
  j["noise"] = noise.empty() ? json(nullptr) : noise_model_to_json(noise);
  return j;
}

TrainConfig TrainConfig::from_json(const json& j) {
  if (!j.is_object()) throw std::invalid_argument("train config: expected a JSON object");
  TrainConfig t;
  for (const char* key : {"epochs", "batch", "lr", "seed", "gradient"})
    if (!j.contains(key)) throw std::invalid_argument(std::string("train config: \"") + key + "\" is missing");
  // Each field by name, so an error says which one (not the JSON library's text).
  const auto wrong_type = [&j](const char* key) {
    return std::invalid_argument(std::string("\"") + key + "\" has the wrong type (" + j.at(key).dump() + ")");
  };
  try {
    t.epochs = model::json_integer<int>(j.at("epochs"), "epochs");
    t.batch = model::json_integer<int>(j.at("batch"), "batch");
    if (!j.at("lr").is_number()) throw wrong_type("lr");
    t.lr = j.at("lr").get<double>();
    t.seed = model::json_integer<std::uint64_t>(j.at("seed"), "seed");
    if (!j.at("gradient").is_string()) throw wrong_type("gradient");
    t.gradient = parse_gradient_method(j.at("gradient").get<std::string>());
    if (j.contains("chunk")) t.chunk = model::json_integer<int>(j.at("chunk"), "chunk");
    if (j.contains("shots")) t.shots = model::json_integer<long>(j.at("shots"), "shots");
    if (j.contains("noise") && !j.at("noise").is_null()) t.noise = noise_model_from_json(j.at("noise"));
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("train config: ") + e.what());
  }
  t.validate();
  return t;
}

void TrainConfig::validate() const {
  // The one check of every path (CLI flags, checkpoints, experiment files).
  if (epochs < 0 || epochs > kMaxEpochs) throw std::invalid_argument("epochs must be 0..100000");
  if (batch < 1 || batch > kMaxBatch) throw std::invalid_argument("batch must be 1..1000000");
  if (!(lr > 0) || !std::isfinite(lr)) throw std::invalid_argument("learning rate must be > 0");
  if (chunk < 1 || chunk > kMaxBatch) throw std::invalid_argument("chunk must be 1..1000000");
  if (shots < 0 || shots > kMaxShots) throw std::invalid_argument("shots must be 0..100000000");
  if (shots > 0 && gradient != GradientMethod::ParamShift)
    throw std::invalid_argument("training from shots takes parameter-shift gradients (gradient param-shift)");
  noise.validate();
}

json noise_model_to_json(const NoiseModel& n) {
  // Only the values that are set: the model reads back equal field by field.
  const auto fields = [](json& j, double p1, double p2, double pm, double amp, double phase, double r01, double r10) {
    const std::pair<const char*, double> all[] = {{"depol1", p1},        {"depol2", p2},
                                                  {"depol_multi", pm},   {"amp_damping", amp},
                                                  {"phase_damping", phase}, {"readout_01", r01},
                                                  {"readout_10", r10}};
    for (const auto& [k, v] : all)
      if (v >= 0) j[k] = v;
  };
  json j = json::object();
  fields(j, n.p1, n.p2, n.p_multi, n.amp_damping, n.phase_damping, n.readout_01, n.readout_10);
  j["readout_error"] = n.readout;
  for (std::size_t q = 0; q < n.qubits.size(); ++q) {
    const QubitNoise& u = n.qubits[q];
    json o = json::object();
    fields(o, u.p1, u.p2, u.p_multi, u.amp_damping, u.phase_damping, u.readout_01, u.readout_10);
    if (!o.empty()) j["qubits"][std::to_string(q)] = o;
  }
  return j;
}

NoiseModel noise_model_from_json(const json& j) {
  const auto bad = [](const std::string& field, const std::string& what) {
    return std::invalid_argument("field '" + field + "': " + what);
  };
  if (!j.is_object()) throw std::invalid_argument("expected a JSON object (docs/noise.md)");
  const auto prob = [&](const json& v, const std::string& field) {
    if (!v.is_number()) throw bad(field, "expected a number");
    const double p = v.get<double>();
    if (!(p >= 0.0 && p <= 1.0)) throw bad(field, "must be a probability in [0, 1], not " + v.dump());
    return p;
  };
  // The error fields of the top level and of each qubit.
  const auto error_field = [&](const std::string& k, const json& v, const std::string& field, double& p1, double& p2,
                               double& pm, double& amp, double& phase, double& r01, double& r10) {
    if (k == "depol1") p1 = prob(v, field);
    else if (k == "depol2") p2 = prob(v, field);
    else if (k == "depol_multi") pm = prob(v, field);
    else if (k == "amp_damping") amp = prob(v, field);
    else if (k == "phase_damping") phase = prob(v, field);
    else if (k == "readout_01") r01 = prob(v, field);
    else if (k == "readout_10") r10 = prob(v, field);
    else return false;
    return true;
  };
  NoiseModel m;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k == "readout_error") {
      m.readout = prob(it.value(), k);
    } else if (k == "description") {
      if (!it.value().is_string()) throw bad(k, "expected a string");
    } else if (k == "qubits") {
      if (!it.value().is_object()) throw bad(k, "expected an object {\"0\": {...}, \"1\": {...}}");
      for (auto q = it.value().begin(); q != it.value().end(); ++q) {
        const std::string qf = "qubits." + q.key();
        const std::string& key = q.key();
        if (key.empty() || key.size() > 2 || key.find_first_not_of("0123456789") != std::string::npos ||
            std::stoi(key) > 63)
          throw bad(qf, "a qubit index 0..63 is expected as the key");
        if (!q.value().is_object()) throw bad(qf, "expected an object of error fields");
        const std::size_t qi = std::size_t(std::stoi(key));
        if (m.qubits.size() <= qi) m.qubits.resize(qi + 1);
        QubitNoise& n = m.qubits[qi];
        for (auto f = q.value().begin(); f != q.value().end(); ++f)
          if (!error_field(f.key(), f.value(), qf + "." + f.key(), n.p1, n.p2, n.p_multi, n.amp_damping,
                           n.phase_damping, n.readout_01, n.readout_10))
            throw bad(qf + "." + f.key(), "unknown field (known: depol1, depol2, depol_multi, amp_damping, "
                                          "phase_damping, readout_01, readout_10)");
      }
    } else if (!error_field(k, it.value(), k, m.p1, m.p2, m.p_multi, m.amp_damping, m.phase_damping, m.readout_01,
                            m.readout_10)) {
      throw bad(k, "unknown field (known: description, depol1, depol2, depol_multi, amp_damping, phase_damping, "
                   "readout_error, readout_01, readout_10, qubits)");
    }
  }
  return m;
}

double to_percent(double fraction) { return std::round(fraction * 1e14) / 1e12; }

}  // namespace qmoe::train
