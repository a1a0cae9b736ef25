// The process's open-file limit (RLIMIT_NOFILE), which Node has no API for. Every TCP connection is a
// file descriptor, and so are the spool segments, the journal and its -wal and -shm: past the limit,
// open() and accept() fail with EMFILE wherever they happen to be. The server reads the limit at start
// to keep descriptors in reserve for its own files (src/listen/fd-limit.ts).
//
// nofile(): raises the soft limit to the hard one where it is lower (an unprivileged process may), then
// returns [soft, hard], -1 for unlimited. Node's own start-up raises it the same way on Linux; doing it
// here too makes it this code's decision, whatever started the process. A separate module from
// records.c: that one is the spool's hot path, this one runs once.

#define NAPI_VERSION 8
#include <errno.h>
#include <node_api.h>
#include <string.h>
#include <sys/resource.h>

static double limit_value(rlim_t v) {
  return v == RLIM_INFINITY ? -1 : (double)v;
}

static napi_value Nofile(napi_env env, napi_callback_info info) {
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) {
    napi_throw_error(env, NULL, strerror(errno));
    return NULL;
  }
  if (r.rlim_cur != RLIM_INFINITY && (r.rlim_max == RLIM_INFINITY || r.rlim_cur < r.rlim_max)) {
    struct rlimit want = {r.rlim_max, r.rlim_max};
    // macOS refuses more than OPEN_MAX for an unlimited hard limit: the soft limit then stays.
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) r.rlim_cur = r.rlim_max;
  }
  napi_value out, soft, hard;
  napi_create_array_with_length(env, 2, &out);
  napi_create_double(env, limit_value(r.rlim_cur), &soft);
  napi_create_double(env, limit_value(r.rlim_max), &hard);
  napi_set_element(env, out, 0, soft);
  napi_set_element(env, out, 1, hard);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value f;
  napi_create_function(env, "nofile", NAPI_AUTO_LENGTH, Nofile, NULL, &f);
  napi_set_named_property(env, exports, "nofile", f);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
