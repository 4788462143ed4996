/*
 * Projection `{{name}}`: counts increments.
 *
 * - `incremented` {"by": n} (n a positive integer) adds n to the count;
 * - `reset` {} sets it back to 0;
 * - every other kind is unknown.
 *
 * State: {"count": n}. Query: {} answers {"count": n}.
 */
#include "hume_guest.h"

const hume_info HUME_INFO = {"{{name}}", "0.1.0", (const char *[]){"incremented", "reset", NULL}};

static int64_t count;

void hume_init(const char *projection) { count = 0; }

hume_status hume_handle(const hume_event *event, const hume_json *data, hume_buf *message) {
  if (hume_kind_is(event, "incremented")) {
    int64_t by;
    if (!hume_json_i64(hume_json_get(data, "by"), &by) || by < 1)
      return hume_reject(message, "incremented: `by` must be an integer of at least 1");
    count += by;
    return HUME_OK;
  }
  if (hume_kind_is(event, "reset")) {
    count = 0;
    return HUME_OK;
  }
  return HUME_UNKNOWN_EVENT;
}

void hume_snapshot(hume_buf *out) {
  hume_buf_puts(out, "{\"count\":");
  hume_buf_i64(out, count);
  hume_buf_putc(out, '}');
}

bool hume_restore(const hume_json *state, hume_buf *message) {
  if (!hume_json_i64(hume_json_get(state, "count"), &count)) {
    hume_buf_puts(message, "expected {\"count\": <integer>}");
    return false;
  }
  return true;
}

bool hume_query(const hume_json *request, hume_buf *out) {
  hume_snapshot(out);
  return true;
}
