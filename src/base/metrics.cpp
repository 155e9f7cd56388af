#include "base/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace ordo::metrics {

histogram::histogram(std::vector<std::uint64_t> upper_bounds, double unit)
    : bounds_(std::move(upper_bounds)),
      unit_(unit),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {}

void histogram::observe(std::uint64_t value) {
  // The first bucket whose upper bound is >= value (Prometheus buckets are inclusive).
  std::size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

histogram::snapshot histogram::read() const {
  snapshot s;
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    if (i < bounds_.size()) s.upper_bounds.push_back(static_cast<double>(bounds_[i]) / unit_);
    s.cumulative.push_back(running);
  }
  s.count = running;
  s.sum = static_cast<double>(sum_.load(std::memory_order_relaxed)) / unit_;
  return s;
}

std::vector<std::uint64_t> latency_bounds_ns() {
  return {50'000,      100'000,       250'000,       500'000,       1'000'000,     2'500'000,
          5'000'000,   10'000'000,    25'000'000,    50'000'000,    100'000'000,   250'000'000,
          500'000'000, 1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};
}

std::string escape(std::string_view text, bool label_value) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && label_value) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[32];
  // Integers up to 2^53 are exact in a double: write them without exponent or fraction.
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
    auto [end, ec] =
        std::to_chars(buffer, buffer + sizeof buffer, static_cast<std::int64_t>(value));
    return std::string(buffer, end);
  }
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, end);
}

void exposition::family(std::string_view name, std::string_view type, std::string_view help) {
  text_ += "# HELP ";
  text_ += name;
  text_ += ' ';
  text_ += escape(help, false);
  text_ += "\n# TYPE ";
  text_ += name;
  text_ += ' ';
  text_ += type;
  text_ += '\n';
}

void exposition::sample(std::string_view name, std::initializer_list<label> labels, double value) {
  text_ += name;
  if (labels.size() > 0) {
    text_ += '{';
    bool first = true;
    for (const auto& [key, v] : labels) {
      if (!first) text_ += ',';
      first = false;
      text_ += key;
      text_ += "=\"";
      text_ += escape(v, true);
      text_ += '"';
    }
    text_ += '}';
  }
  text_ += ' ';
  text_ += format_value(value);
  text_ += '\n';
}

void exposition::histogram(std::string_view name, std::string_view help,
                           const histogram::snapshot& s) {
  family(name, "histogram", help);
  const std::string bucket = std::string(name) + "_bucket";
  for (std::size_t i = 0; i < s.cumulative.size(); ++i) {
    std::string le = i < s.upper_bounds.size() ? format_value(s.upper_bounds[i]) : "+Inf";
    sample(bucket, {{"le", le}}, static_cast<double>(s.cumulative[i]));
  }
  sample(std::string(name) + "_sum", s.sum);
  sample(std::string(name) + "_count", static_cast<double>(s.count));
}

}  // namespace ordo::metrics
