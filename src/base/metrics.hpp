// Metrics for the Prometheus endpoint (/metrics): counters and histograms cheap enough for the
// hot path, and the text exposition format (version 0.0.4) they are written in.
//
// Writing a metric takes no lock and allocates nothing: a counter is one relaxed atomic add, a
// histogram three (its bucket, its sum, nothing else: the count is the sum of the buckets, so a
// scrape never sees a count that disagrees with them). Values are read only by a scrape, which
// may see an observation's bucket before its sum; Prometheus tolerates that, and the next
// scrape agrees.
//
// Thread safety: every member may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ordo::metrics {

class counter {
 public:
  void add(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// Observations are integers in the histogram's own unit (nanoseconds, jobs); dividing by `unit`
// gives the exposed base unit (1e9: nanoseconds to seconds).
class histogram {
 public:
  // `upper_bounds`: the buckets' upper bounds in the observed unit, ascending; a +Inf bucket
  // follows them.
  histogram(std::vector<std::uint64_t> upper_bounds, double unit);

  void observe(std::uint64_t value);

  struct snapshot {
    std::vector<double> upper_bounds;       // in the exposed unit, without +Inf
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
    std::uint64_t count = 0;
  };
  snapshot read() const;

 private:
  std::vector<std::uint64_t> bounds_;
  double unit_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1 (+Inf)
  std::atomic<std::uint64_t> sum_{0};
};

// Bucket bounds in nanoseconds for latencies from 50 µs to 10 s.
std::vector<std::uint64_t> latency_bounds_ns();
inline constexpr double k_nanoseconds_per_second = 1e9;

using label = std::pair<std::string_view, std::string_view>;

// Builds a text exposition: each family once, with its HELP and TYPE lines, then its samples.
class exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, std::initializer_list<label> labels, double value);
  void sample(std::string_view name, double value) { sample(name, {}, value); }
  // A whole histogram family: _bucket (with `le`), _sum and _count samples.
  void histogram(std::string_view name, std::string_view help, const histogram::snapshot& s);

  const std::string& text() const { return text_; }
  std::string take() { return std::move(text_); }

 private:
  std::string text_;
};

// A label value or HELP text with `\`, `"` (label values only) and newlines escaped.
std::string escape(std::string_view text, bool label_value);
// A sample value: integers without a fraction, +Inf, -Inf, NaN, otherwise the shortest form.
std::string format_value(double value);

}  // namespace ordo::metrics
