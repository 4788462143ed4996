/*
 * hume_testing.h: unit-test a C projection natively (cc, no wasm needed).
 * Include it in exactly one test file, compile that with the plugin's
 * sources and hume_json.c (not hume_guest.c), and run it:
 *
 *   cc -I<kit> app.c test_app.c <kit>/hume_json.c -o test_app && ./test_app
 *
 *   #include "hume_testing.h"
 *   int main(void) {
 *     hume_test_init("test");
 *     HUME_CHECK(hume_test_apply("add", "{\"key\":\"a\",\"value\":1}", NULL) == HUME_OK);
 *     HUME_CHECK_SNAPSHOT("{\"a\":1}");
 *     return hume_test_done();
 *   }
 *
 * hume_test_done() prints "N passed, N failed" and returns the exit status.
 */
#ifndef HUME_TESTING_H
#define HUME_TESTING_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hume_guest.h"

static int hume_test_passed, hume_test_failed;
static uint64_t hume_test_position;

/* Native stand-ins for what the component glue provides. */
void hume_log(hume_level level, const char *fmt, ...) {
  static const char *names[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR"};
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "[%s] ", names[level]);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}
__attribute__((weak)) bool hume_query(const hume_json *request, hume_buf *out) {
  hume_buf_puts(out, "this projection answers no queries");
  return false;
}
__attribute__((weak)) void hume_on_caught_up(uint64_t offset) {}

#define HUME_CHECK(cond)                                                       \
  do {                                                                         \
    if (cond) {                                                                \
      hume_test_passed++;                                                      \
    } else {                                                                   \
      hume_test_failed++;                                                      \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

/** Check that the snapshot equals `expected` (a C string of canonical JSON). */
#define HUME_CHECK_SNAPSHOT(expected)                                                          \
  do {                                                                                         \
    char *got_ = hume_test_snapshot();                                                         \
    if (strcmp(got_, (expected)) == 0) {                                                       \
      hume_test_passed++;                                                                      \
    } else {                                                                                   \
      hume_test_failed++;                                                                      \
      fprintf(stderr, "%s:%d: snapshot\n  got:      %s\n  expected: %s\n", __FILE__, __LINE__, \
              got_, (expected));                                                               \
    }                                                                                          \
    free(got_);                                                                                \
  } while (0)

/** Start from the initial state of projection `name`. */
static void hume_test_init(const char *name) {
  hume_test_position = 0;
  hume_init(name);
}

/**
 * Apply one event of `kind` with JSON `data` (NULL = none), as the component
 * does. A rejection message, if any, is appended to `message` (may be NULL).
 */
static hume_status hume_test_apply(const char *kind, const char *data, hume_buf *message) {
  hume_arena arena = {0};
  hume_buf scratch = {0};
  hume_buf *msg = message ? message : &scratch;
  const hume_json *parsed = NULL;
  hume_status status;
  hume_event ev = {++hume_test_position, "test", 4, hume_test_position, kind, strlen(kind),
                   (const uint8_t *)data, data ? strlen(data) : 0, NULL, 0, 0};
  if (data) {
    const char *why = NULL;
    parsed = hume_json_parse(&arena, data, strlen(data), &why);
    if (!parsed) {
      hume_buf_printf(msg, "invalid data for event kind `%s`: not valid JSON: %s", kind, why);
      status = HUME_REJECTED;
      goto done;
    }
  }
  status = hume_handle(&ev, parsed, msg);
done:
  hume_buf_free(&scratch);
  hume_arena_free(&arena);
  return status;
}

/** The current snapshot as a malloc'd C string: canonical JSON, as the
 *  component returns it (rewritten when hume_snapshot's output is not). */
static char *hume_test_snapshot(void) {
  hume_buf out = {0};
  hume_snapshot(&out);
  if (!hume_json_is_canonical(out.ptr, out.len)) {
    hume_buf canonical = {0};
    if (hume_json_canonicalize(&canonical, out.ptr, out.len, NULL)) {
      hume_buf_free(&out);
      out = canonical;
    }
  }
  hume_buf_putc(&out, 0);
  return (char *)out.ptr;
}

/** Restore from a snapshot (JSON text); false if the plugin refuses it. */
static bool hume_test_restore(const char *name, const char *snapshot) {
  hume_arena arena = {0};
  hume_buf message = {0};
  const hume_json *parsed = hume_json_parse(&arena, snapshot, strlen(snapshot), NULL);
  bool ok = false;
  if (parsed) {
    hume_init(name);
    ok = hume_restore(parsed, &message);
  }
  hume_buf_free(&message);
  hume_arena_free(&arena);
  return ok;
}

/** Print "N passed, N failed" and return the process exit status. */
static int hume_test_done(void) {
  printf("%d passed, %d failed\n", hume_test_passed, hume_test_failed);
  return hume_test_failed ? 1 : 0;
}

#endif /* HUME_TESTING_H */
