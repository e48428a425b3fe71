#include "train/checkpoint.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "model/json_integer.hpp"

namespace qmoe::train {

using nlohmann::json;

static json metrics_json(const EpochMetrics& e) {
  return json{{"epoch", e.epoch}, {"train_loss", e.train_loss}, {"train_acc", e.train_acc},
              {"test_loss", e.test_loss}, {"test_acc", e.test_acc}, {"seconds", e.seconds}};
}

json to_json(const Checkpoint& c) {
  json hist = json::array();
  for (const auto& e : c.state.history) hist.push_back(metrics_json(e));
  return json{{"format", "qmoe-checkpoint"},
              {"version", 1},
              {"model", c.model.to_json()},
              {"train", c.train.to_json()},
              {"task", c.task},
              {"state",
               {{"theta", c.state.theta},
                {"adam", {{"lr", c.state.adam.lr}, {"beta1", c.state.adam.beta1}, {"beta2", c.state.adam.beta2},
                          {"eps", c.state.adam.eps}, {"step", c.state.adam.step_count}, {"m", c.state.adam.m},
                          {"v", c.state.adam.v}}},
                {"epoch", c.state.epoch},
                {"rng", c.state.rng_state},
                {"history", hist},
                {"best_test_acc", c.state.best_test_acc},
                {"best_epoch", c.state.best_epoch}}}};
}

// A metric of the history: null (written for NaN, an epoch without an evaluation) reads as NaN.
static double metric(const json& v) {
  return v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>();
}

Checkpoint checkpoint_from_json(const json& j) {
  Checkpoint c;
  if (!j.is_object() || !j.contains("format") || j["format"] != "qmoe-checkpoint")
    throw std::runtime_error("not a qmoe checkpoint");
  if (!j.contains("version") || !j["version"].is_number() || j["version"] != 1)
    throw std::runtime_error("unsupported checkpoint version " + (j.contains("version") ? j["version"].dump() : "(none)"));
  try {
    c.model = model::ModelConfig::from_json(j.at("model"));
    c.train = TrainConfig::from_json(j.at("train"));
    c.task = j.at("task");
    const json& s = j.at("state");
    c.state.theta = s.at("theta").get<std::vector<double>>();
    const json& a = s.at("adam");
    c.state.adam.lr = a.at("lr").get<double>();
    c.state.adam.beta1 = a.at("beta1").get<double>();
    c.state.adam.beta2 = a.at("beta2").get<double>();
    c.state.adam.eps = a.at("eps").get<double>();
    c.state.adam.step_count = json_integer<std::int64_t>(a.at("step"), "step");
    c.state.adam.m = a.at("m").get<std::vector<double>>();
    c.state.adam.v = a.at("v").get<std::vector<double>>();
    c.state.epoch = json_integer<int>(s.at("epoch"), "epoch");
    c.state.rng_state = s.at("rng").get<std::string>();
    for (const json& e : s.at("history")) {
      EpochMetrics m;
      m.epoch = json_integer<int>(e.at("epoch"), "epoch");
      m.train_loss = e.at("train_loss").get<double>();
      m.train_acc = e.at("train_acc").get<double>();
      m.test_loss = metric(e.at("test_loss"));
      m.test_acc = metric(e.at("test_acc"));
      m.seconds = e.at("seconds").get<double>();
      c.state.history.push_back(m);
    }
    c.state.best_test_acc = s.at("best_test_acc").get<double>();
    c.state.best_epoch = json_integer<int>(s.at("best_epoch"), "best_epoch");
  } catch (const json::exception& e) {
    throw std::runtime_error(std::string("damaged checkpoint: ") + e.what());
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(std::string("damaged checkpoint: ") + e.what());
  }
  const model::Model m = model::build_model(c.model);
  if (c.state.theta.size() != std::size_t(m.n_params()) ||
      (!c.state.adam.m.empty() && c.state.adam.m.size() != c.state.theta.size()) ||
      c.state.adam.v.size() != c.state.adam.m.size())
    throw std::runtime_error("damaged checkpoint: parameter count does not match its model");
  if (c.state.epoch < 0 || c.state.best_epoch < 0 || c.state.adam.step_count < 0)
    throw std::runtime_error("damaged checkpoint: negative epoch or step count");
  for (double t : c.state.theta)
    if (!std::isfinite(t)) throw std::runtime_error("damaged checkpoint: non-finite parameter");
  return c;
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
  } catch (const std::exception& e) {
    throw std::runtime_error("checkpoint " + path + ": " + e.what());
  }
}

}  // namespace qmoe::train
