// jemalloc's settings (CMakeLists.txt links ordo with it), read from this symbol when it starts;
// MALLOC_CONF in the environment still overrides them. Without jemalloc (sanitizer builds) the
// symbol is an unused string.
//
// background_thread: one thread returns freed memory to the kernel on jemalloc's decay schedule
// (dirty pages, 10 s), also while the server is idle. Without it, pages are returned only by
// threads that allocate: after a storm of connections (each connection's request, its read
// buffer and its handler frames, freed once it is served), a server left with 10,000 idle SSE
// readers kept about 2 KB per connection it no longer used (issue 19, (f); docs/BENCHMARKS.md).
// One thread is enough for ordo's few arenas; it sleeps between purges.
extern "C" {
// NOLINTNEXTLINE(readability-identifier-naming): the name jemalloc looks up
extern const char* malloc_conf;
const char* malloc_conf = "background_thread:true,max_background_threads:1";
}
