#include "train/checkpoint.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

#include "data/sha256.hpp"
#include "model/json_integer.hpp"

namespace qmoe::train {

using nlohmann::json;

namespace {

json metrics_json(const EpochMetrics& e) {
  return json{{"epoch", e.epoch}, {"train_loss", e.train_loss}, {"train_acc", e.train_acc},
              {"test_loss", e.test_loss}, {"test_acc", e.test_acc}, {"seconds", e.seconds}};
}

// A metric of the history: null (written for NaN, an epoch without an evaluation) reads as NaN.
double metric(const json& v) { return v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>(); }

json adam_json(const Adam& a) {
  return json{{"lr", a.lr}, {"beta1", a.beta1}, {"beta2", a.beta2}, {"eps", a.eps},
              {"step", a.step_count}, {"m", a.m}, {"v", a.v}};
}

Adam adam_from_json(const json& a) {
  Adam r;
  r.lr = a.at("lr").get<double>();
  r.beta1 = a.at("beta1").get<double>();
  r.beta2 = a.at("beta2").get<double>();
  r.eps = a.at("eps").get<double>();
  r.step_count = model::json_integer<std::int64_t>(a.at("step"), "step");
  r.m = a.at("m").get<std::vector<double>>();
  r.v = a.at("v").get<std::vector<double>>();
  return r;
}

// "sha256:" and the SHA-256 of the compact dump of j without its "checksum":
// the content's hash, not the file's bytes. dump() is canonical (keys sorted,
// numbers in their shortest round-trip form), so a file that parses to the
// same values hashes the same however it is laid out.
std::string content_checksum(json j) {
  j.erase("checksum");
  return "sha256:" + data::sha256_hex(j.dump());
}

// Parameters and Adam moments that fit the model, all finite.
void check_parameters(const std::vector<double>& theta, const Adam& adam, std::size_t n_params, const std::string& which) {
  if (theta.size() != n_params || (!adam.m.empty() && adam.m.size() != theta.size()) || adam.v.size() != adam.m.size())
    throw std::runtime_error("damaged checkpoint: " + which + "parameter count does not match its model");
  for (double t : theta)
    if (!std::isfinite(t)) throw std::runtime_error("damaged checkpoint: non-finite " + which + "parameter");
  if (adam.step_count < 0) throw std::runtime_error("damaged checkpoint: negative " + which + "step count");
}

}  // namespace

json to_json(const Checkpoint& c) {
  json hist = json::array();
  for (const auto& e : c.state.history) hist.push_back(metrics_json(e));
  json state = {{"theta", c.state.theta},
                {"adam", adam_json(c.state.adam)},
                {"epoch", c.state.epoch},
                {"rng", c.state.rng_state},
                {"history", hist},
                {"best_test_acc", c.state.best_test_acc},
                {"best_epoch", c.state.best_epoch}};
  // The best epoch's state, unless it is the last epoch's (then it is the state itself).
  if (!c.state.best_theta.empty() && c.state.best_epoch != c.state.epoch)
    state["best"] = {{"theta", c.state.best_theta}, {"adam", adam_json(c.state.best_adam)}, {"rng", c.state.best_rng_state}};
  json j = {{"format", "qmoe-checkpoint"}, {"version", kCheckpointVersion}, {"model", c.model.to_json()},
            {"train", c.train.to_json()}, {"task", c.task}, {"state", state}};
  j["checksum"] = content_checksum(j);
  return j;
}

Checkpoint checkpoint_from_json(const json& j) {
  Checkpoint c;
  if (!j.is_object() || !j.contains("format") || j["format"] != "qmoe-checkpoint")
    throw std::runtime_error("not a qmoe checkpoint");
  const json version = j.contains("version") ? j["version"] : json();
  if (!version.is_number() || (version != 1 && version != kCheckpointVersion))
    throw std::runtime_error("unsupported checkpoint version " + (version.is_null() ? "(none)" : version.dump()) +
                             " (this qmoe reads versions 1 and " + std::to_string(kCheckpointVersion) + ")");
  // Version 1 was written before the checksum and is read as before (docs/checkpoints.md).
  if (version == kCheckpointVersion) {
    if (!j.contains("checksum") || !j["checksum"].is_string())
      throw ChecksumError("damaged checkpoint: version " + std::to_string(kCheckpointVersion) + " without its checksum");
    if (j["checksum"] != content_checksum(j))
      throw ChecksumError("damaged checkpoint: checksum mismatch: changed or corrupted since it was written");
  }
  try {
    c.model = model::ModelConfig::from_json(j.at("model"));
    c.train = TrainConfig::from_json(j.at("train"));
    c.task = j.at("task");
    const json& s = j.at("state");
    c.state.theta = s.at("theta").get<std::vector<double>>();
    c.state.adam = adam_from_json(s.at("adam"));
    c.state.epoch = model::json_integer<int>(s.at("epoch"), "epoch");
    c.state.rng_state = s.at("rng").get<std::string>();
    for (const json& e : s.at("history")) {
      EpochMetrics m;
      m.epoch = model::json_integer<int>(e.at("epoch"), "epoch");
      m.train_loss = e.at("train_loss").get<double>();
      m.train_acc = e.at("train_acc").get<double>();
      m.test_loss = metric(e.at("test_loss"));
      m.test_acc = metric(e.at("test_acc"));
      m.seconds = e.at("seconds").get<double>();
      c.state.history.push_back(m);
    }
    c.state.best_test_acc = s.at("best_test_acc").get<double>();
    c.state.best_epoch = model::json_integer<int>(s.at("best_epoch"), "best_epoch");
    if (s.contains("best")) {
      const json& b = s.at("best");
      c.state.best_theta = b.at("theta").get<std::vector<double>>();
      c.state.best_adam = adam_from_json(b.at("adam"));
      c.state.best_rng_state = b.at("rng").get<std::string>();
    }
  } catch (const json::exception& e) {
    throw std::runtime_error(std::string("damaged checkpoint: ") + e.what());
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(std::string("damaged checkpoint: ") + e.what());
  }
  // The model's size from its configuration (validated above: no huge allocation).
  const std::size_t n_params = std::size_t(model::build_model(c.model).n_params());
  check_parameters(c.state.theta, c.state.adam, n_params, "");
  if (c.state.epoch < 0 || c.state.best_epoch < 0 || c.state.best_epoch > c.state.epoch ||
      c.state.history.size() != std::size_t(c.state.epoch))
    throw std::runtime_error("damaged checkpoint: its epoch, best epoch and history disagree");
  if (!c.state.best_theta.empty()) {
    if (c.state.best_epoch == 0 || c.state.best_epoch == c.state.epoch)
      throw std::runtime_error("damaged checkpoint: a best state without an earlier best epoch");
    check_parameters(c.state.best_theta, c.state.best_adam, n_params, "best ");
  } else if (c.state.best_epoch > 0 && c.state.best_epoch == c.state.epoch) {
    // The last epoch is the best: its state is the best state (as train() keeps it).
    c.state.best_theta = c.state.theta;
    c.state.best_adam = c.state.adam;
    c.state.best_rng_state = c.state.rng_state;
  }
  return c;
}

std::optional<Checkpoint> best_checkpoint(const Checkpoint& c) {
  if (c.state.best_epoch <= 0) return std::nullopt;
  if (c.state.best_epoch == c.state.epoch) return c;
  if (c.state.best_theta.empty()) return std::nullopt;  // version 1: not kept
  Checkpoint b = c;
  b.state.theta = c.state.best_theta;
  b.state.adam = c.state.best_adam;
  b.state.rng_state = c.state.best_rng_state;
  b.state.epoch = c.state.best_epoch;
  b.state.history.resize(std::size_t(c.state.best_epoch));
  return b;
}

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  bool ok;
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error("cannot write " + tmp);
    f << text;
    f.flush();
    ok = bool(f);
  }
  if (!ok) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write " + tmp + " (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot rename " + tmp + " to " + path);
  }
}

std::string metrics_csv(const std::vector<EpochMetrics>& h, bool validation) {
  std::ostringstream os;
  os << (validation ? "epoch,train_loss,train_accuracy_percent,val_loss,val_accuracy_percent,seconds\n"
                    : "epoch,train_loss,train_accuracy_percent,test_loss,test_accuracy_percent,seconds\n");
  os.precision(17);
  for (const auto& e : h)
    os << e.epoch << ',' << e.train_loss << ',' << to_percent(e.train_acc) << ',' << e.test_loss << ','
       << to_percent(e.test_acc) << ',' << e.seconds << '\n';
  return os.str();
}

void save_checkpoint(const std::string& path, const Checkpoint& c) { write_file_atomic(path, to_json(c).dump()); }

Checkpoint load_checkpoint(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open checkpoint " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) throw std::runtime_error("checkpoint " + path + " is damaged (not valid JSON)");
  try {
    return checkpoint_from_json(j);
  } catch (const ChecksumError& e) {
    std::string what = e.what();
    const std::string prefix = "damaged checkpoint: ";
    if (what.rfind(prefix, 0) == 0) what.erase(0, prefix.size());
    throw ChecksumError("checkpoint " + path + " is damaged (" + what + ")");
  } catch (const std::exception& e) {
    throw std::runtime_error("checkpoint " + path + ": " + e.what());
  }
}

}  // namespace qmoe::train
