#include "base/metrics.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace ordo::metrics {
namespace {

TEST(Metrics, CounterAddsFromManyThreads) {
  counter c;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10'000; ++i)
        c.add();
    });
  for (auto& t : threads)
    t.join();
  c.add(5);
  EXPECT_EQ(c.value(), 40'005u);
}

TEST(Metrics, HistogramBucketsAreInclusiveCumulativeAndEndInInf) {
  histogram h({10, 100}, 1);
  for (std::uint64_t v : {0, 10, 11, 100, 101, 5000})
    h.observe(v);
  auto s = h.read();
  ASSERT_EQ(s.upper_bounds, (std::vector<double>{10, 100}));
  EXPECT_EQ(s.cumulative, (std::vector<std::uint64_t>{2, 4, 6}));
  EXPECT_EQ(s.count, 6u);
  EXPECT_DOUBLE_EQ(s.sum, 5222);
}

TEST(Metrics, HistogramInNanosecondsIsExposedInSeconds) {
  histogram h(latency_bounds_ns(), k_nanoseconds_per_second);
  h.observe(3'000'000);  // 3 ms
  auto s = h.read();
  EXPECT_DOUBLE_EQ(s.upper_bounds.front(), 0.00005);
  EXPECT_DOUBLE_EQ(s.sum, 0.003);
  exposition e;
  e.histogram("x_seconds", "A latency.", s);
  EXPECT_NE(e.text().find("x_seconds_bucket{le=\"0.0025\"} 0\n"), std::string::npos) << e.text();
  EXPECT_NE(e.text().find("x_seconds_bucket{le=\"0.005\"} 1\n"), std::string::npos) << e.text();
  EXPECT_NE(e.text().find("x_seconds_bucket{le=\"+Inf\"} 1\n"), std::string::npos) << e.text();
  EXPECT_NE(e.text().find("x_seconds_sum 0.003\nx_seconds_count 1\n"), std::string::npos);
  EXPECT_EQ(e.text().rfind("# HELP x_seconds A latency.\n# TYPE x_seconds histogram\n", 0), 0u);
}

TEST(Metrics, LabelValuesAndHelpAreEscaped) {
  EXPECT_EQ(escape("a\"b\\c\nd", true), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(escape("a\"b\\c\nd", false), "a\"b\\\\c\\nd");
  exposition e;
  e.family("y_total", "counter", "Things.");
  e.sample("y_total", {{"route", "a\"b"}, {"code", "2xx"}}, 3);
  EXPECT_EQ(
      e.text(),
      "# HELP y_total Things.\n# TYPE y_total counter\ny_total{route=\"a\\\"b\",code=\"2xx\"} 3\n");
}

TEST(Metrics, ValuesAreWrittenAsPrometheusParsesThem) {
  EXPECT_EQ(format_value(0), "0");
  EXPECT_EQ(format_value(12345678901234), "12345678901234");
  EXPECT_EQ(format_value(0.25), "0.25");
  EXPECT_EQ(format_value(-2), "-2");
  EXPECT_EQ(format_value(1.0 / 0.0), "+Inf");
  EXPECT_EQ(format_value(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(format_value(0.0 / 0.0), "NaN");
}

}  // namespace
}  // namespace ordo::metrics
