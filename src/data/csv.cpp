// Reading CSV data sets (data.hpp: parse_csv, read_csv): RFC 4180 quoting,
// an optional header, numeric or string labels; every problem one error
// naming the file, line and column. The rest of the data layer is data.cpp.
#include "data/data.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "data/idx.hpp"  // read_file_bytes

namespace qmoe::data {


namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool parse_double(std::string_view s, double& v) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && std::isfinite(v);
}

bool parse_int(std::string_view s, long long& v) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// A field quoted in an error message: at most 40 bytes, control and non-ASCII
// bytes as \xNN, so the message stays one printable line.
std::string shorten(std::string_view s) {
  std::string o;
  const bool cut = s.size() > 40;
  for (unsigned char c : cut ? s.substr(0, 37) : s) {
    if (c >= 0x20 && c < 0x7f) {
      o += static_cast<char>(c);
    } else {
      static constexpr char hex[] = "0123456789abcdef";
      o += "\\x";
      o += hex[c >> 4];
      o += hex[c & 15];
    }
  }
  return cut ? o + "..." : o;
}

// One CSV record: its fields (unquoted) and the line it starts on.
struct CsvRecord {
  std::vector<std::string> fields;
  std::size_t line = 0;
};

// RFC 4180 records: fields separated by commas; a field in double quotes may
// hold commas, line breaks and "" (one quote). Unquoted fields are trimmed of
// spaces and tabs; CRLF is fine; blank lines are skipped.
std::vector<CsvRecord> csv_records(std::string_view all, const std::string& name) {
  std::vector<CsvRecord> out;
  std::size_t pos = 0, line = 1;
  while (pos < all.size()) {
    CsvRecord rec;
    rec.line = line;
    bool blank = true;
    while (true) {  // one field
      std::size_t p = pos;
      while (p < all.size() && (all[p] == ' ' || all[p] == '\t')) ++p;
      std::string field;
      if (p < all.size() && all[p] == '"') {
        blank = false;
        const std::size_t quote_line = line;
        for (++p;; ++p) {
          if (p >= all.size())
            throw std::runtime_error(name + ":" + std::to_string(quote_line) + ": column " +
                                     std::to_string(rec.fields.size() + 1) + ": quoted field has no closing quote");
          if (all[p] == '"') {
            if (p + 1 < all.size() && all[p + 1] == '"') {
              field += '"', ++p;
              continue;
            }
            ++p;
            break;
          }
          if (all[p] == '\n') ++line;
          field += all[p];
        }
        while (p < all.size() && (all[p] == ' ' || all[p] == '\t' || all[p] == '\r')) ++p;
        if (p < all.size() && all[p] != ',' && all[p] != '\n')
          throw std::runtime_error(name + ":" + std::to_string(line) + ": column " +
                                   std::to_string(rec.fields.size() + 1) + ": text after a closing quote");
      } else {
        std::size_t e = p;
        while (e < all.size() && all[e] != ',' && all[e] != '\n') ++e;
        field = std::string(trim(all.substr(p, e - p)));
        if (!field.empty() || (e < all.size() && all[e] == ',')) blank = false;
        p = e;
      }
      rec.fields.push_back(std::move(field));
      pos = p;
      if (pos < all.size() && all[pos] == ',') {
        ++pos;
        continue;
      }
      if (pos < all.size()) ++pos, ++line;  // '\n'
      break;
    }
    if (!blank) out.push_back(std::move(rec));
  }
  return out;
}
}  // namespace

Dataset parse_csv(const std::string& text, const std::string& name, const CsvOptions& opt) {
  std::vector<CsvRecord> recs = csv_records(text, name);
  const std::size_t label_cols = opt.labelled ? 1 : 0;
  // Header: as told, or (Auto) a first line whose feature fields are all text;
  // a first line mixing numbers and text is an error rather than a guess.
  std::size_t first = 0;
  if (!recs.empty()) {
    const auto& f = recs[0].fields;
    const std::size_t nfeat = f.size() > label_cols ? f.size() - label_cols : f.size();
    std::size_t numbers = 0;
    for (std::size_t c = 0; c < nfeat; ++c) {
      double v;
      numbers += parse_double(f[c], v) ? 1 : 0;
    }
    if (opt.header == CsvHeader::Yes) {
      first = 1;
    } else if (opt.header == CsvHeader::Auto && numbers == 0) {
      first = 1;
    } else if (opt.header == CsvHeader::Auto && numbers < nfeat) {
      std::size_t c = 0;
      for (double v; c < nfeat && parse_double(f[c], v);) ++c;
      throw std::runtime_error(name + ":" + std::to_string(recs[0].line) + ": column " + std::to_string(c + 1) + ": '" +
                               shorten(f[c]) +
                               "' is not a finite number, and the line is not all text: if it is a header, say so "
                               "(--csv-header yes); if it is data, fix the field");
    }
  }
  Dataset d;
  std::vector<std::string> labels;
  std::size_t ncols = 0;
  for (std::size_t r = first; r < recs.size(); ++r) {
    const auto& f = recs[r].fields;
    const std::string where = name + ":" + std::to_string(recs[r].line);
    if (ncols == 0) {
      if (f.size() < 1 + label_cols)
        throw std::runtime_error(where + ": need at least one feature" + (opt.labelled ? " and a label" : "") +
                                 " per line, found " + std::to_string(f.size()) + " column");
      ncols = f.size();
    }
    if (f.size() != ncols)
      throw std::runtime_error(where + ": expected " + std::to_string(ncols) + " columns, found " +
                               std::to_string(f.size()));
    for (std::size_t c = 0; c + label_cols < ncols; ++c) {
      double v;
      if (!parse_double(f[c], v))
        throw std::runtime_error(where + ": column " + std::to_string(c + 1) + ": '" + shorten(f[c]) +
                                 "' is not a finite number");
      d.x.push_back(v);
    }
    if (opt.labelled) {
      if (f.back().empty()) throw std::runtime_error(where + ": column " + std::to_string(ncols) + ": empty label");
      labels.push_back(f.back());
    }
    d.source_index.push_back(static_cast<std::int64_t>(r - first));
  }
  if (d.source_index.empty()) throw std::runtime_error(name + ": no data rows");
  d.n_features = static_cast<int>(ncols - label_cols);
  if (!opt.labelled) return d;
  // Classes: integer labels in increasing order (their names the integers),
  // otherwise the label strings in byte order; the names are kept.
  bool integers = true;
  for (const auto& l : labels) {
    long long v;
    integers = integers && parse_int(l, v) && v >= 0 && v <= 1000000;
  }
  std::vector<std::string> keys = labels;
  if (integers)
    for (auto& k : keys) {
      long long v;
      parse_int(k, v);
      k = std::to_string(v);
    }
  std::vector<std::string> uniq = keys;
  if (integers)
    std::sort(uniq.begin(), uniq.end(), [](const std::string& a, const std::string& b) {
      return a.size() != b.size() ? a.size() < b.size() : a < b;
    });
  else
    std::sort(uniq.begin(), uniq.end());
  uniq.erase(std::unique(uniq.begin(), uniq.end()), uniq.end());
  if (uniq.size() > 1000)
    throw std::runtime_error(name + ": " + std::to_string(uniq.size()) +
                             " distinct labels (at most 1000): is the label the last column?");
  std::map<std::string, int> index;
  for (std::size_t i = 0; i < uniq.size(); ++i) index[uniq[i]] = static_cast<int>(i);
  d.n_classes = static_cast<int>(uniq.size());
  for (const auto& u : uniq) d.class_names.push_back(shorten(u));
  d.y.reserve(keys.size());
  for (const auto& k : keys) d.y.push_back(index[k]);
  return d;
}

Dataset read_csv(const std::string& path, const CsvOptions& opt) {
  std::vector<std::uint8_t> b = read_file_bytes(path);
  return parse_csv(std::string(b.begin(), b.end()), path, opt);
}

}  // namespace qmoe::data

