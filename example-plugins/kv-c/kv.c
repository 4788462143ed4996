/*
 * The seed's `kv` projection in C: a key/value map built from events.
 *
 * - `add`    {"key": k, "value": v}  sets k to v (any JSON value);
 * - `remove` {"key": k}              deletes k (no-op when absent);
 * - any other kind is unknown (a strict projection faults on it).
 *
 * State: {"<key>": <value>, ...}, canonical JSON (keys sorted).
 * Query: {"key": k} -> {"value": v} (null when absent).
 */
#include <stdlib.h>

#include "hume_guest.h"

const hume_info HUME_INFO = {"kv", "0.1.0", (const char *[]){"add", "remove", NULL}};

/* key -> the value's canonical JSON text */
static hume_map state;
static hume_buf scratch;

void hume_init(const char *projection) { hume_map_clear(&state); }

static const char *key_of(const hume_json *data, size_t *len) {
  return hume_json_str(hume_json_get(data, "key"), len);
}

static hume_status bad_key(const hume_json *data, const char *kind, hume_buf *message) {
  if (!hume_json_get(data, "key"))
    return hume_reject(message, "invalid data for event kind `%s`: missing field `key`", kind);
  return hume_reject(message, "invalid data for event kind `%s`: `key` must be a string", kind);
}

hume_status hume_handle(const hume_event *event, const hume_json *data, hume_buf *message) {
  size_t key_len;
  const char *key = key_of(data, &key_len);
  if (hume_kind_is(event, "add")) {
    if (!key) return bad_key(data, "add", message);
    const hume_json *value = hume_json_get(data, "value");
    if (!value) return hume_reject(message, "invalid data for event kind `add`: missing field `value`");
    hume_buf_clear(&scratch);
    hume_json_write(&scratch, value);
    hume_map_set(&state, key, key_len, scratch.ptr, scratch.len);
    return HUME_OK;
  }
  if (hume_kind_is(event, "remove")) {
    if (!key) return bad_key(data, "remove", message);
    hume_map_remove(&state, key, key_len);
    return HUME_OK;
  }
  return HUME_UNKNOWN_EVENT;
}

void hume_snapshot(hume_buf *out) {
  hume_map_entry **entries = hume_map_sorted(&state);
  hume_buf_putc(out, '{');
  for (size_t i = 0; i < state.len; i++) {
    if (i) hume_buf_putc(out, ',');
    hume_buf_json_string(out, entries[i]->key, entries[i]->key_len);
    hume_buf_putc(out, ':');
    hume_buf_push(out, entries[i]->value, entries[i]->value_len);
  }
  hume_buf_putc(out, '}');
  free(entries);
}

bool hume_restore(const hume_json *snapshot, hume_buf *message) {
  if (snapshot->type != HUME_JSON_OBJECT) {
    hume_buf_puts(message, "a kv snapshot is a JSON object");
    return false;
  }
  for (size_t i = 0; i < snapshot->u.object.len; i++) {
    const hume_json_member *m = &snapshot->u.object.members[i];
    hume_buf_clear(&scratch);
    hume_json_write(&scratch, m->value);
    hume_map_set(&state, m->key, m->key_len, scratch.ptr, scratch.len);
  }
  return true;
}

bool hume_query(const hume_json *request, hume_buf *out) {
  size_t key_len;
  const char *key = key_of(request, &key_len);
  if (!key) {
    hume_buf_puts(out, "kv answers {\"key\": \"<key>\"}");
    return false;
  }
  hume_map_entry *e = hume_map_get(&state, key, key_len);
  hume_buf_puts(out, "{\"value\":");
  if (e) hume_buf_push(out, e->value, e->value_len);
  else hume_buf_puts(out, "null");
  hume_buf_putc(out, '}');
  return true;
}
