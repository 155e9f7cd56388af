// Projects: creating one (its id a slug, given or derived from the name), listing, reading
// and archiving them. A project's changes go to the change feed only: it has no event stream.
#include "sessions/session_service.hpp"

#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <utility>

#include "sessions/api_json.hpp"
#include "sessions/session_jobs.hpp"

namespace ordo::sessions {

namespace {

bool valid_slug(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
    if (!ok) return false;
  }
  return s.back() != '-';
}

std::string slug_from(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (alnum) {
      out.push_back(c);
    } else if (!out.empty() && out.back() != '-') {
      out.push_back('-');
    }
    if (out.size() >= 48) break;
  }
  while (!out.empty() && out.back() == '-')
    out.pop_back();
  return out;
}

}  // namespace

void session_service::create_project(json::value body, visibility may_create, reply_callback done) {
  run_write(
      engine_,
      [body = std::move(body), may_create = std::move(may_create)](
          write_context& ctx, session_tables& t) -> result<reply> {
        auto r = body_reader::of(body, {"id", "name", "repo_path", "origin_url", "description"});
        if (!r) return std::move(r).error();
        auto name = r->required_text("name", k_max_text_field_bytes);
        if (!name) return std::move(name).error();
        auto id = r->text("id", false, 63);
        if (!id) return std::move(id).error();
        std::string slug = *id && **id ? ***id : slug_from(*name);
        if (!valid_slug(slug)) {
          return invalid("invalid_project_id",
                         "project id '" + slug +
                             "' must be 1-63 characters of a-z, 0-9 and '-', starting and "
                             "ending with a letter or digit" +
                             (*id ? "" : " (derived from the name; send an id)"));
        }
        if (may_create && !may_create(slug, "")) {
          return make_failure(
              failure_kind::forbidden, "insufficient_scope",
              "this token may not create project '" + slug + "' (it needs sessions:write on it)");
        }
        sqlite::project_row p;
        p.id = slug;
        p.name = *name;
        for (auto [field, target] :
             {std::pair{"repo_path", &p.repo_path}, std::pair{"origin_url", &p.origin_url},
              std::pair{"description", &p.description}}) {
          auto v = r->text(field, true, k_max_text_field_bytes);
          if (!v) return std::move(v).error();
          if (*v) *target = **v;
        }
        p.created_at_ms = p.updated_at_ms = ctx.now_ms();
        auto existing = t.project(slug);
        if (!existing) return std::move(existing).error();
        if (*existing) {
          return make_failure(failure_kind::conflict, "project_exists",
                              "a project with id '" + slug + "' already exists");
        }
        if (auto s = t.insert_project(p); !s) return std::move(s).error();
        json::object d;
        d["project"] = project_json(p);
        if (auto s = append_change(ctx, "project.created", p.id, std::nullopt, std::nullopt, d);
            !s) {
          return std::move(s).error();
        }
        return reply{reply_kind::created, project_json(p), std::nullopt, false};
      },
      std::move(done));
}

void session_service::list_projects(bool include_archived, visibility visible,
                                    reply_callback done) {
  run_read(
      engine_,
      [include_archived, visible = std::move(visible)](storage::read_snapshot&,
                                                       session_tables& t) -> result<reply> {
        auto rows = t.projects(include_archived);
        if (!rows) return std::move(rows).error();
        json::array a;
        for (const auto& p : *rows) {
          if (visible && !visible(p.id, "")) continue;
          a.push_back(project_json(p));
        }
        json::object o;
        o["projects"] = std::move(a);
        return reply{reply_kind::ok, std::move(o), std::nullopt, false};
      },
      std::move(done));
}

void session_service::get_project(std::string id, reply_callback done) {
  run_read(
      engine_,
      [id = std::move(id)](storage::read_snapshot&, session_tables& t) -> result<reply> {
        auto p = t.project(id);
        if (!p) return std::move(p).error();
        if (!*p) return not_found("project", id);
        return reply{reply_kind::ok, project_json(**p), std::nullopt, false};
      },
      std::move(done));
}

void session_service::archive_project(std::string id, reply_callback done) {
  run_write(
      engine_,
      [id = std::move(id)](write_context& ctx, session_tables& t) -> result<reply> {
        auto p = t.project(id);
        if (!p) return std::move(p).error();
        if (!*p) return not_found("project", id);
        if (!(*p)->archived_at_ms) {
          (*p)->archived_at_ms = ctx.now_ms();
          (*p)->updated_at_ms = ctx.now_ms();
          (*p)->revision += 1;
          if (auto s = t.update_project(**p); !s) return std::move(s).error();
          json::object d;
          d["project"] = project_json(**p);
          if (auto s = append_change(ctx, "project.archived", id, std::nullopt, std::nullopt, d);
              !s) {
            return std::move(s).error();
          }
        }
        return reply{reply_kind::ok, project_json(**p), std::nullopt, false};
      },
      std::move(done));
}

}  // namespace ordo::sessions
