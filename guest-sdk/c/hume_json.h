/*
 * hume_json.h: a tiny JSON toolkit for Hume plugins written in C.
 *
 * - hume_buf:   a growable byte buffer (for snapshots, messages, answers);
 * - hume_json:  a parsed JSON value (parse event data, snapshots, queries);
 *               hume_json_write() emits it as *canonical* JSON: object keys
 *               sorted by code point, no whitespace, strings escaped as
 *               serde_json does, numbers as below, so C states are
 *               byte-identical to the Rust, Python and JS kits';
 * - hume_map:   a string-keyed hash map with sorted iteration, the usual
 *               shape of a projection's state.
 *
 * Parsed values live in a hume_arena and are freed all at once.
 *
 * Numbers, as in every Hume kit: an integer literal within the 64-bit range
 * (-2^63 ..= 2^64 - 1) is that exact integer, written back as is (`-0` as
 * `0`); every other number is the correctly rounded double, written as
 * ECMAScript's Number.prototype.toString does (shortest round-trip digits;
 * positional from 1e-6 up to 1e21, else 1e-7 / 1e+21 / 1.5e+300; 2.0 as 2;
 * -0.0 as 0). A number too large for a double (1e400) does not parse.
 */
#ifndef HUME_JSON_H
#define HUME_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ buffers */

/** A growable byte buffer. Zero-initialise it ({0}); free with hume_buf_free. */
typedef struct {
  uint8_t *ptr;
  size_t len;
  size_t cap;
} hume_buf;

void hume_buf_reserve(hume_buf *b, size_t extra);
void hume_buf_push(hume_buf *b, const void *bytes, size_t len);
void hume_buf_putc(hume_buf *b, char c);
void hume_buf_puts(hume_buf *b, const char *s);
/** printf into the buffer. */
void hume_buf_printf(hume_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Append `s` (`len` bytes of UTF-8) as a JSON string literal, escaped as serde_json does. */
void hume_buf_json_string(hume_buf *b, const char *s, size_t len);
/** Append a signed integer. */
void hume_buf_i64(hume_buf *b, int64_t v);
/** Append a double as canonical JSON (see "Numbers" above; NaN and infinities as null). */
void hume_buf_f64(hume_buf *b, double v);
void hume_buf_clear(hume_buf *b);
void hume_buf_free(hume_buf *b);

/* ------------------------------------------------------------ arena */

typedef struct hume_arena_chunk hume_arena_chunk;
/** Bump allocator for parsed values. Zero-initialise it; free with hume_arena_free. */
typedef struct {
  hume_arena_chunk *chunk;
} hume_arena;

void *hume_arena_alloc(hume_arena *a, size_t size);
/** Free everything allocated so far but keep the first chunk for reuse. */
void hume_arena_reset(hume_arena *a);
void hume_arena_free(hume_arena *a);

/* ------------------------------------------------------------ values */

typedef enum {
  HUME_JSON_NULL,
  HUME_JSON_BOOL,
  HUME_JSON_NUMBER,
  HUME_JSON_STRING,
  HUME_JSON_ARRAY,
  HUME_JSON_OBJECT,
} hume_json_type;

typedef struct hume_json hume_json;
typedef struct hume_json_member hume_json_member;

/** A parsed JSON value. */
struct hume_json {
  hume_json_type type;
  union {
    bool boolean;
    /** The number's literal text (validated JSON syntax), not NUL-terminated. */
    struct {
      const char *text;
      size_t len;
    } number;
    /** Decoded UTF-8, NUL-terminated (may contain NULs: use len). */
    struct {
      const char *ptr;
      size_t len;
    } string;
    struct {
      hume_json **items;
      size_t len;
    } array;
    /** Members in document order (a repeated key keeps its last value on lookup). */
    struct {
      hume_json_member *members;
      size_t len;
    } object;
  } u;
};

struct hume_json_member {
  const char *key; /* decoded UTF-8, NUL-terminated */
  size_t key_len;
  hume_json *value;
};

/**
 * Parse `len` bytes of JSON. Returns NULL on a syntax error, with a static
 * message in *error (when error is not NULL).
 */
hume_json *hume_json_parse(hume_arena *a, const void *text, size_t len, const char **error);

/** The member `key` of an object, or NULL (also when `obj` is not an object). */
const hume_json *hume_json_get(const hume_json *obj, const char *key);

/** The string's bytes (and length), or NULL when `v` is not a string. */
const char *hume_json_str(const hume_json *v, size_t *len);

/**
 * True when `v` is an integer literal (no fraction, no exponent) within
 * int64_t, as serde_json requires for an `i64` field; stores it in *out.
 */
bool hume_json_i64(const hume_json *v, int64_t *out);

/** True when `v` is a number; stores the nearest double in *out. */
bool hume_json_f64(const hume_json *v, double *out);

/** Append `v` as canonical JSON. */
void hume_json_write(hume_buf *out, const hume_json *v);

/** Whether the `len` bytes at `text` are canonical JSON already (what hume_json_write writes). */
bool hume_json_is_canonical(const void *text, size_t len);

/**
 * Rewrite the `len` bytes of JSON text at `text` canonically into `out`.
 * False (nothing appended) when the text is not JSON; *error says why.
 */
bool hume_json_canonicalize(hume_buf *out, const void *text, size_t len, const char **error);

/* ------------------------------------------------------------ maps */

/** One entry of a hume_map: a key and a value, both owned by the map. */
typedef struct {
  char *key;
  size_t key_len;
  char *value;
  size_t value_len;
  uint64_t hash; /* 0 = empty slot */
} hume_map_entry;

/** A string -> bytes hash map. Zero-initialise it; free with hume_map_free. */
typedef struct {
  hume_map_entry *slots;
  size_t cap; /* power of two */
  size_t len;
  size_t tombstones;
} hume_map;

/** The entry for `key`, or NULL. */
hume_map_entry *hume_map_get(const hume_map *m, const char *key, size_t key_len);
/** Set `key` to a copy of `value` (replacing any previous value). */
void hume_map_set(hume_map *m, const char *key, size_t key_len, const void *value, size_t value_len);
/** Remove `key`; returns whether it was there. */
bool hume_map_remove(hume_map *m, const char *key, size_t key_len);
/**
 * The entries sorted by key (byte order = code-point order for UTF-8), as a
 * malloc'd array of pointers the caller frees (not the entries).
 */
hume_map_entry **hume_map_sorted(const hume_map *m);
void hume_map_clear(hume_map *m);
void hume_map_free(hume_map *m);

#ifdef __cplusplus
}
#endif

#endif /* HUME_JSON_H */
