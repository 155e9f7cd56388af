// The change feed's stream (created at start and on an adopted database) and its snapshot:
// every live project, session and PR with the feed offset they are consistent at.
#include "sessions/session_service.hpp"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <future>
#include <memory>
#include <utility>

#include "sessions/api_json.hpp"
#include "sessions/session_jobs.hpp"
#include "streams/offset.hpp"

namespace ordo::sessions {

void session_service::ensure_change_feed() {
  auto finished = std::make_shared<std::promise<void>>();
  auto future = finished->get_future();
  if (submit_change_feed_job([finished] { finished->set_value(); })) future.wait();
}

bool session_service::submit_change_feed_job(std::function<void()> then) {
  write_job job;
  // Nodes that start together create it once: the path is locked before it is looked up.
  job.streams = {std::string(k_changes_stream_path)};
  job.run = [](write_context& ctx) -> status {
    auto feed = ctx.find_stream(k_changes_stream_path);
    if (!feed) return std::move(feed).error();
    if (*feed) return ok_v;
    auto created =
        ctx.create_stream(std::string(k_changes_stream_path), std::string(k_events_content_type));
    if (!created) return std::move(created).error();
    return ok_v;
  };
  job.done = [this, then = std::move(then)](const std::optional<failure>& f) {
    if (f) {
      background_.change_feed_failures.add();
      spdlog::error("cannot create the change feed: {}", f->message);
    }
    if (then) then();
  };
  return engine_.submit(std::move(job));
}

void session_service::ensure_project_feed(std::string project, std::function<void(status)> done) {
  run_write(
      engine_,
      [project](write_context& ctx, session_tables& t) -> result<reply> {
        auto p = t.project(project);
        if (!p) return std::move(p).error();
        if (!*p) return not_found("project", project);
        std::string path = sqlite::project_changes_path(project);
        auto feed = ctx.find_stream(path);
        if (!feed) return std::move(feed).error();
        if (!*feed) {
          auto created = ctx.create_stream(path, std::string(k_events_content_type));
          if (!created) return std::move(created).error();
        }
        return reply{reply_kind::ok, json::object{}, std::nullopt, false};
      },
      [done = std::move(done)](result<reply> r) {
        if (!r) {
          done(std::move(r).error());
        } else {
          done(ok_v);
        }
      });
}

void session_service::changes_snapshot(visibility visible, std::optional<std::string> project,
                                       reply_callback done) {
  run_read(
      engine_,
      [visible = std::move(visible), project = std::move(project)](
          storage::read_snapshot& ctx, session_tables& t) -> result<reply> {
        std::uint64_t epoch = ctx.database_epoch;
        // The entities and the feed offset agree: the task runs in one snapshot (read_with()).
        // Live (not archived) projects; a live session may belong to an archived project,
        // which GET /v1/projects/{id} still resolves.
        auto projects = t.projects(false);
        if (!projects) return std::move(projects).error();
        auto sessions = t.live_sessions();
        if (!sessions) return std::move(sessions).error();

        auto feed = t.stream_by_path(project ? sqlite::project_changes_path(*project)
                                             : std::string(k_changes_stream_path));
        if (!feed) return std::move(feed).error();
        stream_position tail;
        std::int64_t incarnation = 0;
        if (*feed) {
          auto tl = t.stream_tail(**feed);
          if (!tl) return std::move(tl).error();
          auto inc = t.stream_incarnation(**feed);
          if (!inc) return std::move(inc).error();
          tail = *tl;
          incarnation = *inc;
        }
        json::array project_array, session_array, pr_array;
        for (const auto& p : *projects) {
          if (project && p.id != *project) continue;
          if (visible && !visible(p.id, "")) continue;
          project_array.push_back(project_json(p));
        }
        for (const auto& s : *sessions) {
          if (project && s.project_id != *project) continue;
          if (visible && !visible(s.project_id, s.id)) continue;
          session_array.push_back(session_json(s));
          auto prs = t.prs_of_session(s.id);
          if (!prs) return std::move(prs).error();
          for (const auto& pr : *prs) {
            auto view = pr_view(t, pr);
            if (!view) return std::move(view).error();
            pr_array.push_back(std::move(*view));
          }
        }
        json::object o;
        o["projects"] = std::move(project_array);
        o["sessions"] = std::move(session_array);
        o["prs"] = std::move(pr_array);
        o["offset"] = format_offset(
            {offset_prefix_for(epoch, static_cast<std::uint64_t>(incarnation)), tail});
        return reply{reply_kind::ok, std::move(o), std::nullopt, false};
      },
      std::move(done));
}

}  // namespace ordo::sessions
