// Whole numbers read from JSON (checkpoints, config.json, experiment files),
// checked before they are converted: nlohmann's get<int>() casts a float such
// as 1e20 straight to int, which is undefined behaviour when it does not fit.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace qmoe::model {

// v as Int: a JSON integer, or a float with a whole value (8.0), within Int's
// range. Anything else throws std::invalid_argument("'field' must be ...").
template <class Int>
Int json_integer(const nlohmann::json& v, const std::string& field) {
  using limits = std::numeric_limits<Int>;
  const std::string range = std::to_string(limits::min()) + " .. " + std::to_string(limits::max());
  const auto bad = [&] { return std::invalid_argument("'" + field + "' must be an integer in " + range + ", got " + v.dump()); };
  if (v.is_number_unsigned()) {
    const std::uint64_t u = v.get<std::uint64_t>();
    if (u > std::uint64_t(limits::max())) throw bad();
    return Int(u);
  }
  if (v.is_number_integer()) {
    const std::int64_t i = v.get<std::int64_t>();
    if (i < 0 ? (!limits::is_signed || i < std::int64_t(limits::min())) : std::uint64_t(i) > std::uint64_t(limits::max()))
      throw bad();
    return Int(i);
  }
  if (v.is_number_float()) {
    // Whole values below 2^53 are exact in a double and fit in int64: convert,
    // then check Int's range as above.
    const double d = v.get<double>();
    if (!(std::abs(d) < 0x1p53) || d != std::floor(d)) throw bad();
    return json_integer<Int>(nlohmann::json(std::int64_t(d)), field);
  }
  throw bad();
}

}  // namespace qmoe::model
