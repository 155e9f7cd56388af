#include "storage/postgres/sql_statements.hpp"

#include <algorithm>
#include <cstdlib>
#include <optional>

namespace ordo::postgres {

numbered_sql numbered_parameters(std::string_view sql) {
  numbered_sql out;
  out.text.reserve(sql.size() + 16);
  int next = 0;
  char quote = 0;
  auto dollar = [&](int n) {
    auto at = std::find(out.used.begin(), out.used.end(), n);
    if (at == out.used.end()) at = out.used.insert(out.used.end(), n);
    out.text += "$" + std::to_string(at - out.used.begin() + 1);
  };
  for (std::size_t i = 0; i < sql.size(); ++i) {
    char c = sql[i];
    if (quote) {
      if (c == quote) quote = 0;
      out.text.push_back(c);
    } else if (c == '\'' || c == '"') {
      quote = c;
      out.text.push_back(c);
    } else if (c == '?') {
      std::size_t digits = i + 1;
      while (digits < sql.size() && sql[digits] >= '0' && sql[digits] <= '9')
        ++digits;
      if (digits > i + 1) {
        int n = std::atoi(std::string(sql.substr(i + 1, digits - i - 1)).c_str());
        next = std::max(next, n);
        dollar(n);
        i = digits - 1;
      } else {
        dollar(++next);
      }
    } else {
      out.text.push_back(c);
    }
  }
  return out;
}

class sql_statements::statement final : public storage::sql_statement {
 public:
  statement(connection& db, std::string_view sql) : db_(db), sql_(numbered_parameters(sql)) {}

  void bind_int64(int index, std::int64_t value) override { at(index) = param::integer(value); }
  void bind_text(int index, std::string_view text) override {
    at(index) = param(std::string(text));
  }
  void bind_blob(int index, std::string_view bytes) override { at(index) = param::bytes(bytes); }
  void bind_null(int index) override { at(index) = param(); }

  result<bool> step() override {
    if (!rows_) {
      auto r = db_.query(sql_.text, ordered());
      if (!r) return std::move(r).error();
      rows_ = std::move(*r);
      row_ = -1;
    }
    return ++row_ < rows_->size();
  }
  status run() override {
    auto r = db_.query(sql_.text, ordered());
    if (!r) return std::move(r).error();
    return ok_v;
  }
  void reset() override {
    rows_.reset();
    params_.clear();
    row_ = -1;
  }

  std::int64_t column_int64(int index) const override {
    std::string_view text = rows_->text(row_, index);
    if (text == "t") return 1;  // BOOLEAN
    if (text == "f") return 0;
    return rows_->int64(row_, index);
  }
  std::string_view column_text(int index) const override { return rows_->text(row_, index); }
  std::string_view column_blob(int index) const override {
    blob_ = rows_->bytes(row_, index);
    return blob_;
  }
  bool column_is_null(int index) const override { return rows_->is_null(row_, index); }

 private:
  // The bound values in the order of the text's $N (unbound ones are NULL).
  std::vector<param> ordered() const {
    std::vector<param> out;
    out.reserve(sql_.used.size());
    for (int n : sql_.used)
      out.push_back(static_cast<std::size_t>(n) <= params_.size() ? params_[n - 1] : param());
    return out;
  }
  param& at(int index) {
    if (params_.size() < static_cast<std::size_t>(index)) params_.resize(index);
    return params_[index - 1];
  }

  connection& db_;
  numbered_sql sql_;
  std::vector<param> params_;
  std::optional<rows> rows_;
  int row_ = -1;
  mutable std::string blob_;
};

sql_statements::sql_statements(connection& db) : db_(&db) {}
sql_statements::~sql_statements() = default;

result<storage::sql_statement*> sql_statements::get(std::string_view sql) {
  auto it = statements_.find(std::string(sql));
  if (it == statements_.end()) {
    it = statements_.emplace(std::string(sql), std::make_unique<statement>(*db_, sql)).first;
  }
  return static_cast<storage::sql_statement*>(it->second.get());
}

result<stream_position> sql_statements::stream_tail(stream_id stream) {
  auto t = db_->query_int64("SELECT tail_seq FROM streams WHERE id = $1",
                            {param::integer(stream.value())});
  if (!t) return std::move(t).error();
  return stream_position{static_cast<std::uint64_t>(t->value_or(0))};
}

}  // namespace ordo::postgres
