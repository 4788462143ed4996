/*
 * hume_guest.h: write a Hume projection plugin in C.
 *
 * The plugin defines HUME_INFO and four functions; the kit (hume_guest.c,
 * compiled in by `hume build`) turns them into the exports of the WIT world
 * `hume:projection/projection` (wit/projection.wit):
 *
 *   #include "hume_guest.h"
 *
 *   const hume_info HUME_INFO = {"kv", "0.1.0", (const char *[]){"add", "remove", NULL}};
 *
 *   void hume_init(const char *projection) { ... start from the initial state ... }
 *
 *   hume_status hume_handle(const hume_event *event, const hume_json *data, hume_buf *message) {
 *     if (hume_kind_is(event, "add")) { ...; return HUME_OK; }
 *     if (...invalid...) return hume_reject(message, "why: %s", detail);
 *     return HUME_UNKNOWN_EVENT;
 *   }
 *
 *   void hume_snapshot(hume_buf *out) { ... append the state as canonical JSON ... }
 *   bool hume_restore(const hume_json *state, hume_buf *message) { ... }
 *
 * Optional (the kit has defaults): hume_query, hume_on_caught_up.
 *
 * Rules: refuse an event (HUME_UNKNOWN_EVENT / HUME_REJECTED) *before*
 * changing the state; the host keeps the state as it was before that event.
 * `data` is the event's JSON payload, parsed (NULL when the event has none);
 * it and `event` are valid only during the call. Write the state with
 * hume_json_write / hume_buf_json_string so it is canonical JSON (sorted
 * keys, no whitespace): the same bytes the Rust, Python and JS kits produce.
 */
#ifndef HUME_GUEST_H
#define HUME_GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hume_json.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What the plugin says about itself (define `const hume_info HUME_INFO`). */
typedef struct {
  const char *name;
  const char *version;
  /** Handled event kinds, NULL-terminated; NULL or empty = every kind. */
  const char *const *kinds;
} hume_info;

extern const hume_info HUME_INFO;

/** One event, valid during the call only. Strings are not NUL-terminated. */
typedef struct {
  uint64_t position;
  const char *stream;
  size_t stream_len;
  uint64_t revision;
  const char *kind;
  size_t kind_len;
  const uint8_t *data;
  size_t data_len;
  const uint8_t *metadata;
  size_t metadata_len;
  uint64_t timestamp;
} hume_event;

/** The outcome of hume_handle. */
typedef enum {
  HUME_OK = 0,
  /** This projection does not handle the event's kind (WIT `unknown-event`). */
  HUME_UNKNOWN_EVENT = 1,
  /** The event is invalid for the state; `message` says why (WIT `rejected`). */
  HUME_REJECTED = 2,
} hume_status;

/* ---- implemented by the plugin ---- */

/** Start from the initial state (also called before a restore). */
void hume_init(const char *projection);
/** Apply one event. */
hume_status hume_handle(const hume_event *event, const hume_json *data, hume_buf *message);
/** Append the current state to `out` as canonical JSON. */
void hume_snapshot(hume_buf *out);
/** Replace the state with a parsed snapshot; false (with a message) if it is not one. */
bool hume_restore(const hume_json *state, hume_buf *message);

/* ---- optional (weak defaults in the kit) ---- */

/**
 * Answer a read-side question: append the JSON answer to `out` and return
 * true, or append an error message and return false. Default: no queries.
 */
bool hume_query(const hume_json *request, hume_buf *out);
/** The projection has applied every event up to the log head. Default: nothing. */
void hume_on_caught_up(uint64_t offset);

/* ---- provided by the kit ---- */

/** Log levels for hume_log. */
typedef enum { HUME_LOG_TRACE, HUME_LOG_DEBUG, HUME_LOG_INFO, HUME_LOG_WARN, HUME_LOG_ERROR } hume_level;

/** Write a line (printf-style) to the host's log. */
void hume_log(hume_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Is the event of kind `kind`? */
static inline bool hume_kind_is(const hume_event *event, const char *kind) {
  size_t n = strlen(kind);
  return event->kind_len == n && memcmp(event->kind, kind, n) == 0;
}

/** Write a printf-style rejection message and return HUME_REJECTED. */
static inline hume_status hume_reject(hume_buf *message, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline hume_status hume_reject(hume_buf *message, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = __builtin_vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0) hume_buf_push(message, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
  return HUME_REJECTED;
}

#ifdef __cplusplus
}
#endif

#endif /* HUME_GUEST_H */
