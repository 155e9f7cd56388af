#include "base/rfc3339.hpp"

#include <cstdio>

namespace ordo {
namespace {

constexpr std::int64_t k_ms_per_second = 1000;
constexpr std::int64_t k_seconds_per_minute = 60;
constexpr std::int64_t k_seconds_per_hour = 3600;
constexpr std::int64_t k_seconds_per_day = 86400;
constexpr std::int64_t k_ms_per_day = k_seconds_per_day * k_ms_per_second;

constexpr int k_max_hour = 23;
constexpr int k_max_minute = 59;
// RFC 3339 allows :60 for a leap second; Unix time has no slot for it, so it maps to :59.
constexpr int k_leap_second = 60;
constexpr std::size_t k_max_fraction_digits = 9;
constexpr std::size_t k_millisecond_digits = 3;

// "YYYY-MM-DDTHH:MM:SS" is 19 characters; the fraction and offset follow.
constexpr std::size_t k_date_time_length = 19;

constexpr bool is_leap_year(std::int64_t year) {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

constexpr int days_in_month(std::int64_t year, int month) {
  constexpr int k_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && is_leap_year(year) ? 29 : k_days[month - 1];
}

// Days from 1970-01-01 to year-month-day in the proleptic Gregorian calendar (Howard Hinnant's
// days_from_civil: eras of 400 years, each year starting in March so Feb 29 falls last).
constexpr std::int64_t days_from_civil(std::int64_t year, int month, int day) {
  year -= month <= 2 ? 1 : 0;
  const std::int64_t era = (year >= 0 ? year : year - 399) / 400;
  const std::int64_t year_of_era = year - era * 400;
  const std::int64_t day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const std::int64_t day_of_era =
      year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

struct civil_date {
  std::int64_t year;
  int month;
  int day;
};

// Inverse of days_from_civil.
constexpr civil_date civil_from_days(std::int64_t days) {
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const std::int64_t day_of_era = days - era * 146097;
  const std::int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const std::int64_t day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const std::int64_t month_index = (5 * day_of_year + 2) / 153;
  const int day = static_cast<int>(day_of_year - (153 * month_index + 2) / 5 + 1);
  const int month = static_cast<int>(month_index < 10 ? month_index + 3 : month_index - 9);
  const std::int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
  return civil_date{year, month, day};
}

static_assert(days_from_civil(1970, 1, 1) == 0);
static_assert(days_from_civil(2000, 3, 1) == 11017);
static_assert(civil_from_days(11017).year == 2000 && civil_from_days(11017).month == 3);

failure invalid_timestamp(std::string_view text, std::string_view why) {
  return make_failure(failure_kind::invalid, "invalid_timestamp",
                      "timestamp '" + std::string(text) + "' is not an RFC 3339 date-time (" +
                          std::string(why) +
                          "); expected YYYY-MM-DDTHH:MM:SS[.fraction] followed by Z or +HH:MM "
                          "or -HH:MM");
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Reads exactly `count` digits at `pos`; false if any is not a digit.
bool read_digits(std::string_view text, std::size_t pos, std::size_t count, int& out) {
  if (pos + count > text.size()) return false;
  int value = 0;
  for (std::size_t i = pos; i < pos + count; ++i) {
    if (!is_digit(text[i])) return false;
    value = value * 10 + (text[i] - '0');
  }
  out = value;
  return true;
}

bool has_char_at(std::string_view text, std::size_t pos, char c) {
  return pos < text.size() && text[pos] == c;
}

}  // namespace

result<std::int64_t> parse_rfc3339_ms(std::string_view text) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (text.size() < k_date_time_length || !read_digits(text, 0, 4, year) ||
      !has_char_at(text, 4, '-') || !read_digits(text, 5, 2, month) || !has_char_at(text, 7, '-') ||
      !read_digits(text, 8, 2, day) ||
      !(has_char_at(text, 10, 'T') || has_char_at(text, 10, 't')) ||
      !read_digits(text, 11, 2, hour) || !has_char_at(text, 13, ':') ||
      !read_digits(text, 14, 2, minute) || !has_char_at(text, 16, ':') ||
      !read_digits(text, 17, 2, second)) {
    return invalid_timestamp(text, "malformed date or time");
  }
  if (month < 1 || month > 12) return invalid_timestamp(text, "month out of range");
  if (day < 1 || day > days_in_month(year, month)) {
    return invalid_timestamp(text, "day out of range for the month");
  }
  if (hour > k_max_hour) return invalid_timestamp(text, "hour out of range");
  if (minute > k_max_minute) return invalid_timestamp(text, "minute out of range");
  if (second > k_leap_second) return invalid_timestamp(text, "second out of range");
  if (second == k_leap_second) second = k_leap_second - 1;

  std::size_t pos = k_date_time_length;
  std::int64_t millis = 0;
  if (has_char_at(text, pos, '.')) {
    ++pos;
    const std::size_t fraction_start = pos;
    while (pos < text.size() && is_digit(text[pos])) {
      const std::size_t digit_index = pos - fraction_start;
      if (digit_index < k_millisecond_digits) millis = millis * 10 + (text[pos] - '0');
      ++pos;
    }
    const std::size_t digits = pos - fraction_start;
    if (digits == 0 || digits > k_max_fraction_digits) {
      return invalid_timestamp(text, "fraction must have 1 to 9 digits");
    }
    for (std::size_t d = digits; d < k_millisecond_digits; ++d)
      millis *= 10;
  }

  std::int64_t offset_seconds = 0;
  if (pos + 1 == text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const bool east = text[pos] == '+';
    int offset_hour = 0, offset_minute = 0;
    if (pos + 6 != text.size() || !read_digits(text, pos + 1, 2, offset_hour) ||
        !has_char_at(text, pos + 3, ':') || !read_digits(text, pos + 4, 2, offset_minute)) {
      return invalid_timestamp(text, "malformed offset");
    }
    if (offset_hour > k_max_hour || offset_minute > k_max_minute) {
      return invalid_timestamp(text, "offset out of range");
    }
    offset_seconds = offset_hour * k_seconds_per_hour + offset_minute * k_seconds_per_minute;
    if (!east) offset_seconds = -offset_seconds;
  } else {
    return invalid_timestamp(text, "missing or malformed offset");
  }

  const std::int64_t local_seconds = days_from_civil(year, month, day) * k_seconds_per_day +
                                     hour * k_seconds_per_hour + minute * k_seconds_per_minute +
                                     second;
  // Local time is UTC plus the offset, so UTC is local time minus it.
  return (local_seconds - offset_seconds) * k_ms_per_second + millis;
}

std::string format_rfc3339_ms(std::int64_t unix_ms) {
  // Floor division, so instants before 1970 land on the previous day, not the next.
  std::int64_t days = unix_ms / k_ms_per_day;
  std::int64_t ms_of_day = unix_ms % k_ms_per_day;
  if (ms_of_day < 0) {
    ms_of_day += k_ms_per_day;
    --days;
  }
  const civil_date date = civil_from_days(days);
  const std::int64_t seconds_of_day = ms_of_day / k_ms_per_second;
  const int hour = static_cast<int>(seconds_of_day / k_seconds_per_hour);
  const int minute = static_cast<int>(seconds_of_day % k_seconds_per_hour / k_seconds_per_minute);
  const int second = static_cast<int>(seconds_of_day % k_seconds_per_minute);
  const int millis = static_cast<int>(ms_of_day % k_ms_per_second);

  char buffer[64];
  const int length = std::snprintf(buffer, sizeof buffer, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ",
                                   static_cast<long long>(date.year), date.month, date.day, hour,
                                   minute, second, millis);
  return std::string(buffer, static_cast<std::size_t>(length));
}

}  // namespace ordo
