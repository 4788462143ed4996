/* hume_json.c: see hume_json.h. */
#include "hume_json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ buffers */

static void oom(void) {
  /* Out of memory inside the sandbox: trap (the host reports a fault). */
  __builtin_trap();
}

void hume_buf_reserve(hume_buf *b, size_t extra) {
  if (b->len + extra <= b->cap) return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->len + extra) cap *= 2;
  uint8_t *p = realloc(b->ptr, cap);
  if (!p) oom();
  b->ptr = p;
  b->cap = cap;
}

void hume_buf_push(hume_buf *b, const void *bytes, size_t len) {
  if (!len) return;
  hume_buf_reserve(b, len);
  memcpy(b->ptr + b->len, bytes, len);
  b->len += len;
}

void hume_buf_putc(hume_buf *b, char c) {
  hume_buf_reserve(b, 1);
  b->ptr[b->len++] = (uint8_t)c;
}

void hume_buf_puts(hume_buf *b, const char *s) { hume_buf_push(b, s, strlen(s)); }

void hume_buf_printf(hume_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  if (n > 0) {
    hume_buf_reserve(b, (size_t)n + 1);
    vsnprintf((char *)b->ptr + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
  }
  va_end(ap);
}

void hume_buf_json_string(hume_buf *b, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  hume_buf_reserve(b, len + 2);
  size_t plain = 0;
  while (plain < len && (unsigned char)s[plain] >= 0x20 && s[plain] != '"' && s[plain] != '\\') plain++;
  if (plain == len) { /* nothing to escape */
    b->ptr[b->len++] = '"';
    memcpy(b->ptr + b->len, s, len);
    b->len += len;
    b->ptr[b->len++] = '"';
    return;
  }
  hume_buf_putc(b, '"');
  size_t start = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    char u[7];
    if (c == '"') esc = "\\\"";
    else if (c == '\\') esc = "\\\\";
    else if (c < 0x20) {
      switch (c) {
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
          u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0';
          u[4] = hex[c >> 4]; u[5] = hex[c & 15]; u[6] = 0;
          esc = u;
      }
    }
    if (esc) {
      hume_buf_push(b, s + start, i - start);
      hume_buf_puts(b, esc);
      start = i + 1;
    }
  }
  hume_buf_push(b, s + start, len - start);
  hume_buf_putc(b, '"');
}

void hume_buf_i64(hume_buf *b, int64_t v) {
  char tmp[24];
  int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
  hume_buf_push(b, tmp, (size_t)n);
}

void hume_buf_clear(hume_buf *b) { b->len = 0; }

void hume_buf_free(hume_buf *b) {
  free(b->ptr);
  b->ptr = NULL;
  b->len = b->cap = 0;
}

/* ------------------------------------------------------------ arena */

struct hume_arena_chunk {
  hume_arena_chunk *next;
  size_t used;
  size_t cap;
  _Alignas(16) unsigned char data[];
};

void *hume_arena_alloc(hume_arena *a, size_t size) {
  size = (size + 15) & ~(size_t)15;
  hume_arena_chunk *c = a->chunk;
  if (!c || c->used + size > c->cap) {
    size_t cap = 16384;
    while (cap < size) cap *= 2;
    c = malloc(sizeof *c + cap);
    if (!c) oom();
    c->next = a->chunk;
    c->used = 0;
    c->cap = cap;
    a->chunk = c;
  }
  void *p = c->data + c->used;
  c->used += size;
  return p;
}

void hume_arena_reset(hume_arena *a) {
  hume_arena_chunk *c = a->chunk;
  if (!c) return;
  /* keep the oldest chunk (the last in the list), free the others */
  while (c->next) {
    hume_arena_chunk *next = c->next;
    free(c);
    c = next;
  }
  c->used = 0;
  a->chunk = c;
}

void hume_arena_free(hume_arena *a) {
  hume_arena_chunk *c = a->chunk;
  while (c) {
    hume_arena_chunk *next = c->next;
    free(c);
    c = next;
  }
  a->chunk = NULL;
}

/* ------------------------------------------------------------ parser */

typedef struct {
  hume_arena *arena;
  const unsigned char *p;
  const unsigned char *end;
  const char *error;
  int depth;
} parser;

#define MAX_DEPTH 128 /* serde_json's recursion limit */

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static hume_json *new_value(parser *ps, hume_json_type type) {
  hume_json *v = hume_arena_alloc(ps->arena, sizeof *v);
  v->type = type;
  return v;
}

static int hex_digit(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool read_hex4(parser *ps, unsigned *out) {
  if (ps->end - ps->p < 4) return false;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int d = hex_digit(ps->p[i]);
    if (d < 0) return false;
    v = v * 16 + (unsigned)d;
  }
  ps->p += 4;
  *out = v;
  return true;
}

static size_t put_utf8(char *out, unsigned cp) {
  if (cp < 0x80) { out[0] = (char)cp; return 1; }
  if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F)); return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F)); return 4;
}

/* Length of the valid UTF-8 sequence at p (0 if invalid). */
static size_t utf8_len(const unsigned char *p, const unsigned char *end) {
  unsigned char c = p[0];
  size_t n;
  unsigned cp;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; }
  else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; }
  else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; }
  else return 0;
  if ((size_t)(end - p) < n) return 0;
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n;
}

/* Parse a string literal (ps->p at the opening quote) into decoded UTF-8. */
static bool parse_string(parser *ps, const char **out, size_t *out_len) {
  ps->p++; /* opening quote */
  const unsigned char *start = ps->p;
  /* Fast path: plain ASCII without escapes, the usual key or value. */
  const unsigned char *q = start;
  while (q < ps->end && *q != '"' && *q != '\\' && *q >= 0x20 && *q < 0x80) q++;
  if (q < ps->end && *q == '"') {
    size_t n = (size_t)(q - start);
    char *buf = hume_arena_alloc(ps->arena, n + 1);
    memcpy(buf, start, n);
    buf[n] = 0;
    ps->p = q + 1;
    *out = buf;
    *out_len = n;
    return true;
  }
  /* decoded text is never longer than the literal */
  size_t max = 0;
  while (start + max < ps->end && start[max] != '"') {
    if (start[max] == '\\') max++;
    max++;
  }
  char *buf = hume_arena_alloc(ps->arena, max + 1);
  size_t n = 0;
  for (;;) {
    if (ps->p >= ps->end) { ps->error = "EOF while parsing a string"; return false; }
    unsigned char c = *ps->p;
    if (c == '"') { ps->p++; break; }
    if (c < 0x20) { ps->error = "control character in string"; return false; }
    if (c == '\\') {
      ps->p++;
      if (ps->p >= ps->end) { ps->error = "EOF while parsing a string"; return false; }
      unsigned char e = *ps->p++;
      switch (e) {
        case '"': buf[n++] = '"'; break;
        case '\\': buf[n++] = '\\'; break;
        case '/': buf[n++] = '/'; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u': {
          unsigned cp;
          if (!read_hex4(ps, &cp)) { ps->error = "invalid \\u escape"; return false; }
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned lo;
            if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u') {
              ps->error = "lone leading surrogate in hex escape"; return false;
            }
            ps->p += 2;
            if (!read_hex4(ps, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
              ps->error = "invalid surrogate pair in hex escape"; return false;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            ps->error = "lone trailing surrogate in hex escape"; return false;
          }
          n += put_utf8(buf + n, cp);
          break;
        }
        default: ps->error = "invalid escape"; return false;
      }
    } else {
      size_t k = utf8_len(ps->p, ps->end);
      if (!k) { ps->error = "invalid UTF-8 in string"; return false; }
      memcpy(buf + n, ps->p, k);
      n += k;
      ps->p += k;
    }
  }
  buf[n] = 0;
  *out = buf;
  *out_len = n;
  return true;
}

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static bool exact_integer(const char *t, size_t n);
static double literal_double(const char *t, size_t n);

static hume_json *parse_value(parser *ps);

static hume_json *parse_number(parser *ps) {
  const unsigned char *start = ps->p;
  if (ps->p < ps->end && *ps->p == '-') ps->p++;
  if (ps->p >= ps->end || !is_digit(*ps->p)) { ps->error = "invalid number"; return NULL; }
  if (*ps->p == '0') {
    ps->p++;
    if (ps->p < ps->end && is_digit(*ps->p)) { ps->error = "invalid number"; return NULL; }
  } else {
    while (ps->p < ps->end && is_digit(*ps->p)) ps->p++;
  }
  if (ps->p < ps->end && *ps->p == '.') {
    ps->p++;
    if (ps->p >= ps->end || !is_digit(*ps->p)) { ps->error = "invalid number"; return NULL; }
    while (ps->p < ps->end && is_digit(*ps->p)) ps->p++;
  }
  size_t exponent_digits = 0;
  if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
    ps->p++;
    if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
    if (ps->p >= ps->end || !is_digit(*ps->p)) { ps->error = "invalid number"; return NULL; }
    const unsigned char *digits = ps->p;
    while (ps->p < ps->end && is_digit(*ps->p)) ps->p++;
    exponent_digits = (size_t)(ps->p - digits);
  }
  const char *text = (const char *)start;
  size_t len = (size_t)(ps->p - start);
  /* Too large for a double (1e400): refused, as every kit does. Only a
   * literal with a 3-digit exponent or hundreds of digits can be. */
  if (exponent_digits >= 3 || len > 300) {
    double x = literal_double(text, len);
    if (x - x != 0) { ps->error = "number out of range"; return NULL; }
  }
  hume_json *v = new_value(ps, HUME_JSON_NUMBER);
  v->u.number.text = text;
  v->u.number.len = len;
  return v;
}

static bool literal(parser *ps, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) {
    ps->error = "expected value";
    return false;
  }
  ps->p += n;
  return true;
}

static hume_json *parse_array(parser *ps) {
  ps->p++; /* [ */
  size_t cap = 4, len = 0;
  hume_json **items = hume_arena_alloc(ps->arena, cap * sizeof *items);
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == ']') {
    ps->p++;
  } else {
    for (;;) {
      hume_json *item = parse_value(ps);
      if (!item) return NULL;
      if (len == cap) {
        hume_json **bigger = hume_arena_alloc(ps->arena, 2 * cap * sizeof *items);
        memcpy(bigger, items, len * sizeof *items);
        items = bigger;
        cap *= 2;
      }
      items[len++] = item;
      skip_ws(ps);
      if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
      if (ps->p < ps->end && *ps->p == ']') { ps->p++; break; }
      ps->error = "expected `,` or `]`";
      return NULL;
    }
  }
  hume_json *v = new_value(ps, HUME_JSON_ARRAY);
  v->u.array.items = items;
  v->u.array.len = len;
  return v;
}

static hume_json *parse_object(parser *ps) {
  ps->p++; /* { */
  size_t cap = 4, len = 0;
  hume_json_member *members = hume_arena_alloc(ps->arena, cap * sizeof *members);
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == '}') {
    ps->p++;
  } else {
    for (;;) {
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != '"') { ps->error = "key must be a string"; return NULL; }
      hume_json_member m;
      if (!parse_string(ps, &m.key, &m.key_len)) return NULL;
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ':') { ps->error = "expected `:`"; return NULL; }
      ps->p++;
      m.value = parse_value(ps);
      if (!m.value) return NULL;
      if (len == cap) {
        hume_json_member *bigger = hume_arena_alloc(ps->arena, 2 * cap * sizeof *members);
        memcpy(bigger, members, len * sizeof *members);
        members = bigger;
        cap *= 2;
      }
      members[len++] = m;
      skip_ws(ps);
      if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
      if (ps->p < ps->end && *ps->p == '}') { ps->p++; break; }
      ps->error = "expected `,` or `}`";
      return NULL;
    }
  }
  hume_json *v = new_value(ps, HUME_JSON_OBJECT);
  v->u.object.members = members;
  v->u.object.len = len;
  return v;
}

static hume_json *parse_value(parser *ps) {
  skip_ws(ps);
  if (ps->p >= ps->end) { ps->error = "EOF while parsing a value"; return NULL; }
  hume_json *v;
  switch (*ps->p) {
    case 'n':
      if (!literal(ps, "null")) return NULL;
      return new_value(ps, HUME_JSON_NULL);
    case 't':
      if (!literal(ps, "true")) return NULL;
      v = new_value(ps, HUME_JSON_BOOL);
      v->u.boolean = true;
      return v;
    case 'f':
      if (!literal(ps, "false")) return NULL;
      v = new_value(ps, HUME_JSON_BOOL);
      v->u.boolean = false;
      return v;
    case '"': {
      const char *s;
      size_t n;
      if (!parse_string(ps, &s, &n)) return NULL;
      v = new_value(ps, HUME_JSON_STRING);
      v->u.string.ptr = s;
      v->u.string.len = n;
      return v;
    }
    case '[':
    case '{':
      if (++ps->depth > MAX_DEPTH) { ps->error = "recursion limit exceeded"; return NULL; }
      v = *ps->p == '[' ? parse_array(ps) : parse_object(ps);
      ps->depth--;
      return v;
    default:
      if (*ps->p == '-' || is_digit(*ps->p)) return parse_number(ps);
      ps->error = "expected value";
      return NULL;
  }
}

hume_json *hume_json_parse(hume_arena *a, const void *text, size_t len, const char **error) {
  parser ps = {a, text, (const unsigned char *)text + len, NULL, 0};
  hume_json *v = parse_value(&ps);
  if (v) {
    skip_ws(&ps);
    if (ps.p != ps.end) {
      ps.error = "trailing characters";
      v = NULL;
    }
  }
  if (!v && error) *error = ps.error ? ps.error : "invalid JSON";
  return v;
}

/* ------------------------------------------------------------ access */

const hume_json *hume_json_get(const hume_json *obj, const char *key) {
  if (!obj || obj->type != HUME_JSON_OBJECT) return NULL;
  size_t n = strlen(key);
  const hume_json *found = NULL;
  for (size_t i = 0; i < obj->u.object.len; i++) {
    const hume_json_member *m = &obj->u.object.members[i];
    if (m->key_len == n && memcmp(m->key, key, n) == 0) found = m->value;
  }
  return found;
}

const char *hume_json_str(const hume_json *v, size_t *len) {
  if (!v || v->type != HUME_JSON_STRING) return NULL;
  if (len) *len = v->u.string.len;
  return v->u.string.ptr;
}

static bool is_integer_literal(const char *t, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (t[i] == '.' || t[i] == 'e' || t[i] == 'E') return false;
  return true;
}

/* Parse the digits of an integer literal as u64; false on overflow. */
static bool digits_u64(const char *t, size_t n, uint64_t *out) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t d = (uint64_t)(t[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

bool hume_json_i64(const hume_json *v, int64_t *out) {
  if (!v || v->type != HUME_JSON_NUMBER) return false;
  const char *t = v->u.number.text;
  size_t n = v->u.number.len;
  if (!is_integer_literal(t, n)) return false;
  bool neg = t[0] == '-';
  uint64_t mag;
  if (!digits_u64(t + neg, n - neg, &mag)) return false;
  if (neg) {
    if (mag == 0) return false; /* serde_json reads `-0` as a float */
    if (mag > (uint64_t)INT64_MAX + 1) return false;
    *out = (int64_t)(0 - mag);
  } else {
    if (mag > (uint64_t)INT64_MAX) return false;
    *out = (int64_t)mag;
  }
  return true;
}

/* ------------------------------------------------------------ canonical writer */

/*
 * Numbers, as in every Hume kit: an integer literal within the 64-bit range
 * (-2^63 ..= 2^64 - 1) is that exact integer and is written as is (`-0` as
 * `0`); every other number is the correctly rounded double (strtod) and is
 * written as ECMAScript's Number.prototype.toString does: the shortest
 * digits that read back to it (the closest such), positional from 1e-6 up
 * to 1e21, exponent form outside (1e-7, 1e+21, 1.5e+300), no fraction for an
 * integral value (2.0 is 2), 0 for -0.0, null for NaN and infinities.
 */

static bool exact_integer(const char *t, size_t n) {
  if (!is_integer_literal(t, n)) return false;
  bool neg = t[0] == '-';
  uint64_t mag;
  if (!digits_u64(t + neg, n - neg, &mag)) return false;
  return !neg || mag <= (uint64_t)INT64_MAX + 1;
}

/* The double nearest to the number literal t (n bytes of valid JSON syntax). */
static double literal_double(const char *t, size_t n) {
  char tmp[64];
  char *s = n < sizeof tmp ? tmp : malloc(n + 1);
  if (!s) oom();
  memcpy(s, t, n);
  s[n] = 0;
  double x = strtod(s, NULL);
  if (s != tmp) free(s);
  return x;
}

/* Whether 0.DIGITS x 10^point reads back as x. */
static bool reads_back(const char *digits, int point, double x) {
  char tmp[48];
  snprintf(tmp, sizeof tmp, "0.%se%d", digits, point);
  return strtod(tmp, NULL) == x;
}

/* digits + 1 in the last place; returns true when it carried into a new
 * leading digit (999 -> 1000, kept at the same length: 100, point + 1). */
static bool digits_up(char *d, int k) {
  for (int i = k - 1; i >= 0; i--) {
    if (d[i] != '9') {
      d[i]++;
      return false;
    }
    d[i] = '0';
  }
  d[0] = '1';
  return true;
}

/* digits - 1 in the last place; returns true when the leading digit went
 * (100 -> 099, kept at the same length: 999, point - 1). */
static bool digits_down(char *d, int k) {
  int i = k - 1;
  while (i >= 0 && d[i] == '0') d[i--] = '9';
  d[i]--;
  if (d[0] != '0') return false;
  memmove(d, d + 1, (size_t)k - 1);
  d[k - 1] = '9';
  return true;
}

/*
 * The shortest digits that read back to x > 0, the closest to x among them:
 * x = 0.DIGITS x 10^point. At most one 15-digit decimal lies within half an
 * ulp of a normal double, so if the correctly rounded 15 digits (or a
 * neighbour, near a power of two where the gaps differ) read back,
 * stripping their trailing zeros gives the shortest; else 16 digits, else 17
 * always do. A subnormal has fewer bits: try every length from 1.
 */
static int shortest_digits(double x, char digits[24], int *point) {
  char tmp[48];
  int k = 0;
  for (int p = x < 2.2250738585072014e-308 ? 1 : 15; p <= 17; p++) {
    snprintf(tmp, sizeof tmp, "%.*e", p - 1, x); /* d.ddd...e+XX, correctly rounded */
    const char *q = tmp;
    k = 0;
    for (; *q != 'e'; q++)
      if (*q != '.') digits[k++] = *q;
    digits[k] = 0;
    *point = atoi(q + 1) + 1;
    if (p == 17 || reads_back(digits, *point, x)) break;
    char near[24];
    memcpy(near, digits, (size_t)k + 1);
    int up = *point + digits_up(near, k);
    if (reads_back(near, up, x)) {
      memcpy(digits, near, (size_t)k + 1);
      *point = up;
      break;
    }
    memcpy(near, digits, (size_t)k + 1);
    int down = *point - digits_down(near, k);
    if (reads_back(near, down, x)) {
      memcpy(digits, near, (size_t)k + 1);
      *point = down;
      break;
    }
  }
  while (k > 1 && digits[k - 1] == '0') k--;
  digits[k] = 0;
  return k;
}

void hume_buf_f64(hume_buf *out, double x) {
  if (x != x || x - x != 0) { hume_buf_puts(out, "null"); return; }
  if (x == 0) { hume_buf_putc(out, '0'); return; }
  if (x < 0) {
    hume_buf_putc(out, '-');
    x = -x;
  }
  char digits[24];
  int n;
  int k = shortest_digits(x, digits, &n);
  if (k <= n && n <= 21) {
    hume_buf_push(out, digits, (size_t)k);
    for (int i = k; i < n; i++) hume_buf_putc(out, '0');
  } else if (0 < n && n <= 21) {
    hume_buf_push(out, digits, (size_t)n);
    hume_buf_putc(out, '.');
    hume_buf_push(out, digits + n, (size_t)(k - n));
  } else if (-6 < n && n <= 0) {
    hume_buf_puts(out, "0.");
    for (int i = n; i < 0; i++) hume_buf_putc(out, '0');
    hume_buf_push(out, digits, (size_t)k);
  } else {
    hume_buf_putc(out, digits[0]);
    if (k > 1) {
      hume_buf_putc(out, '.');
      hume_buf_push(out, digits + 1, (size_t)(k - 1));
    }
    hume_buf_printf(out, "e%+d", n - 1);
  }
}

bool hume_json_f64(const hume_json *v, double *out) {
  if (!v || v->type != HUME_JSON_NUMBER) return false;
  *out = literal_double(v->u.number.text, v->u.number.len);
  return true;
}

static void write_number(hume_buf *out, const char *t, size_t n) {
  if (exact_integer(t, n)) {
    /* JSON forbids leading zeros: already canonical, but for -0 */
    if (n == 2 && t[0] == '-' && t[1] == '0') hume_buf_putc(out, '0');
    else hume_buf_push(out, t, n);
    return;
  }
  hume_buf_f64(out, literal_double(t, n));
}

static int compare_keys(const char *a, size_t al, const char *b, size_t bl) {
  int c = memcmp(a, b, al < bl ? al : bl);
  if (c) return c;
  return al < bl ? -1 : al > bl ? 1 : 0;
}

static int compare_members(const void *x, const void *y) {
  const hume_json_member *const *a = x;
  const hume_json_member *const *b = y;
  int c = compare_keys((*a)->key, (*a)->key_len, (*b)->key, (*b)->key_len);
  if (c) return c;
  return *a < *b ? -1 : *a > *b ? 1 : 0; /* document order among duplicates */
}

void hume_json_write(hume_buf *out, const hume_json *v) {
  switch (v->type) {
    case HUME_JSON_NULL: hume_buf_puts(out, "null"); return;
    case HUME_JSON_BOOL: hume_buf_puts(out, v->u.boolean ? "true" : "false"); return;
    case HUME_JSON_NUMBER: write_number(out, v->u.number.text, v->u.number.len); return;
    case HUME_JSON_STRING: hume_buf_json_string(out, v->u.string.ptr, v->u.string.len); return;
    case HUME_JSON_ARRAY:
      hume_buf_putc(out, '[');
      for (size_t i = 0; i < v->u.array.len; i++) {
        if (i) hume_buf_putc(out, ',');
        hume_json_write(out, v->u.array.items[i]);
      }
      hume_buf_putc(out, ']');
      return;
    case HUME_JSON_OBJECT: {
      size_t n = v->u.object.len;
      const hume_json_member *small[16];
      const hume_json_member **sorted = n <= 16 ? small : malloc(n * sizeof *sorted);
      if (!sorted) oom();
      for (size_t i = 0; i < n; i++) sorted[i] = &v->u.object.members[i];
      if (n <= 16) { /* insertion sort: small objects are the common case */
        for (size_t i = 1; i < n; i++) {
          const hume_json_member *m = sorted[i];
          size_t j = i;
          while (j > 0 && compare_members(&sorted[j - 1], &m) > 0) {
            sorted[j] = sorted[j - 1];
            j--;
          }
          sorted[j] = m;
        }
      } else {
        qsort(sorted, n, sizeof *sorted, compare_members);
      }
      hume_buf_putc(out, '{');
      bool first = true;
      for (size_t i = 0; i < n; i++) {
        /* a repeated key keeps its last value, as serde_json's maps do */
        if (i + 1 < n && compare_keys(sorted[i]->key, sorted[i]->key_len, sorted[i + 1]->key,
                                      sorted[i + 1]->key_len) == 0)
          continue;
        if (!first) hume_buf_putc(out, ',');
        first = false;
        hume_buf_json_string(out, sorted[i]->key, sorted[i]->key_len);
        hume_buf_putc(out, ':');
        hume_json_write(out, sorted[i]->value);
      }
      hume_buf_putc(out, '}');
      if (sorted != small) free(sorted);
      return;
    }
  }
}

/* ------------------------------------------------------------ canonical check */

/* A scan of JSON text that is already canonical: what hume_json_write
 * writes (no whitespace, keys strictly increasing, canonical escapes and
 * numbers), without building anything. */
typedef struct {
  const unsigned char *p;
  const unsigned char *end;
  int depth;
  hume_buf scratch;
} canon_scan;

static bool canon_value(canon_scan *s);

/* A string at s->p in canonical form; its body (escapes included) in
 * [*body, *body + *len), *escaped when it has an escape. */
static bool canon_string(canon_scan *s, const unsigned char **body, size_t *len, bool *escaped) {
  const unsigned char *p = ++s->p;
  *body = p;
  *escaped = false;
  for (;;) {
    while (p < s->end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') p++; /* plain ASCII */
    if (p >= s->end || *p == '"') break;
    unsigned char c = *p;
    if (c == '\\') {
      *escaped = true;
      if (s->end - p < 2) return false;
      unsigned char e = p[1];
      if (e == '"' || e == '\\' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
        p += 2;
        continue;
      }
      /* \u00XX, lowercase, only for a control character without a short form */
      if (e != 'u' || s->end - p < 6 || p[2] != '0' || p[3] != '0' || (p[4] != '0' && p[4] != '1')) return false;
      int lo = hex_digit(p[5]);
      if (lo < 0 || (p[5] >= 'A' && p[5] <= 'F')) return false;
      unsigned cp = (unsigned)((p[4] - '0') * 16 + lo);
      if (cp == '\b' || cp == '\f' || cp == '\n' || cp == '\r' || cp == '\t') return false;
      p += 6;
    } else if (c < 0x20) {
      return false;
    } else if (c < 0x80) {
      p++;
    } else {
      size_t k = utf8_len(p, s->end);
      if (!k) return false;
      p += k;
    }
  }
  if (p >= s->end) return false;
  *len = (size_t)(p - *body);
  s->p = p + 1;
  return true;
}

static bool canon_number(canon_scan *s) {
  const unsigned char *start = s->p, *p = s->p, *end = s->end;
  if (p < end && *p == '-') p++;
  if (p >= end || !is_digit(*p)) return false;
  if (*p == '0') p++;
  else while (p < end && is_digit(*p)) p++;
  if (p < end && *p == '.') {
    p++;
    if (p >= end || !is_digit(*p)) return false;
    while (p < end && is_digit(*p)) p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (p >= end || !is_digit(*p)) return false;
    while (p < end && is_digit(*p)) p++;
  }
  s->p = p;
  const char *t = (const char *)start;
  size_t n = (size_t)(p - start);
  if (exact_integer(t, n)) return !(n == 2 && t[0] == '-' && t[1] == '0');
  hume_buf_clear(&s->scratch);
  hume_buf_f64(&s->scratch, literal_double(t, n));
  return s->scratch.len == n && memcmp(s->scratch.ptr, t, n) == 0;
}

static bool canon_word(canon_scan *s, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) return false;
  s->p += n;
  return true;
}

static bool canon_value(canon_scan *s) {
  if (s->p >= s->end) return false;
  switch (*s->p) {
    case 'n': return canon_word(s, "null");
    case 't': return canon_word(s, "true");
    case 'f': return canon_word(s, "false");
    case '"': {
      const unsigned char *body;
      size_t len;
      bool escaped;
      return canon_string(s, &body, &len, &escaped);
    }
    case '[':
      if (++s->depth > MAX_DEPTH) return false;
      s->p++;
      if (s->p < s->end && *s->p == ']') {
        s->p++;
      } else {
        for (;;) {
          if (!canon_value(s)) return false;
          if (s->p < s->end && *s->p == ',') { s->p++; continue; }
          if (s->p < s->end && *s->p == ']') { s->p++; break; }
          return false;
        }
      }
      s->depth--;
      return true;
    case '{': {
      if (++s->depth > MAX_DEPTH) return false;
      s->p++;
      if (s->p < s->end && *s->p == '}') {
        s->p++;
        s->depth--;
        return true;
      }
      const unsigned char *prev = NULL;
      size_t prev_len = 0;
      bool prev_escaped = false;
      for (;;) {
        if (s->p >= s->end || *s->p != '"') return false;
        const unsigned char *key;
        size_t key_len;
        bool escaped;
        if (!canon_string(s, &key, &key_len, &escaped)) return false;
        if (prev) {
          /* raw bytes order as the decoded keys when neither has an escape */
          if (escaped || prev_escaped) return false;
          if (compare_keys((const char *)prev, prev_len, (const char *)key, key_len) >= 0) return false;
        }
        prev = key;
        prev_len = key_len;
        prev_escaped = escaped;
        if (s->p >= s->end || *s->p != ':') return false;
        s->p++;
        if (!canon_value(s)) return false;
        if (s->p < s->end && *s->p == ',') { s->p++; continue; }
        if (s->p < s->end && *s->p == '}') { s->p++; break; }
        return false;
      }
      s->depth--;
      return true;
    }
    default:
      return (*s->p == '-' || is_digit(*s->p)) && canon_number(s);
  }
}

bool hume_json_is_canonical(const void *text, size_t len) {
  canon_scan s = {text, (const unsigned char *)text + len, 0, {0}};
  bool ok = canon_value(&s) && s.p == s.end;
  hume_buf_free(&s.scratch);
  return ok;
}

bool hume_json_canonicalize(hume_buf *out, const void *text, size_t len, const char **error) {
  if (hume_json_is_canonical(text, len)) {
    hume_buf_push(out, text, len);
    return true;
  }
  hume_arena arena = {0};
  const hume_json *v = hume_json_parse(&arena, text, len, error);
  if (v) hume_json_write(out, v);
  hume_arena_free(&arena);
  return v != NULL;
}

/* ------------------------------------------------------------ maps */

static uint64_t hash_key(const char *key, size_t len) {
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)key[i];
    h *= 0x100000001b3ull;
  }
  return h < 2 ? h + 2 : h; /* 0 = empty, 1 = tombstone */
}

#define TOMBSTONE 1

static hume_map_entry *find_slot(const hume_map *m, const char *key, size_t key_len, uint64_t h,
                                 hume_map_entry **free_slot) {
  size_t mask = m->cap - 1;
  size_t i = (size_t)h & mask;
  if (free_slot) *free_slot = NULL;
  for (;;) {
    hume_map_entry *e = &m->slots[i];
    if (e->hash == 0) {
      if (free_slot && !*free_slot) *free_slot = e;
      return NULL;
    }
    if (e->hash == TOMBSTONE) {
      if (free_slot && !*free_slot) *free_slot = e;
    } else if (e->hash == h && e->key_len == key_len && memcmp(e->key, key, key_len) == 0) {
      return e;
    }
    i = (i + 1) & mask;
  }
}

hume_map_entry *hume_map_get(const hume_map *m, const char *key, size_t key_len) {
  if (!m->cap) return NULL;
  return find_slot(m, key, key_len, hash_key(key, key_len), NULL);
}

static void grow(hume_map *m) {
  size_t old_cap = m->cap;
  hume_map_entry *old = m->slots;
  m->cap = old_cap ? old_cap * 2 : 16;
  if ((m->len + 1) * 4 < old_cap) m->cap = old_cap; /* only tombstones: rehash in place size */
  m->slots = calloc(m->cap, sizeof *m->slots);
  if (!m->slots) oom();
  m->tombstones = 0;
  for (size_t i = 0; i < old_cap; i++) {
    if (old[i].hash > TOMBSTONE) {
      hume_map_entry *slot;
      find_slot(m, old[i].key, old[i].key_len, old[i].hash, &slot);
      *slot = old[i];
    }
  }
  free(old);
}

static char *dup_bytes(const void *p, size_t n) {
  char *d = malloc(n + 1);
  if (!d) oom();
  if (n) memcpy(d, p, n);
  d[n] = 0;
  return d;
}

void hume_map_set(hume_map *m, const char *key, size_t key_len, const void *value, size_t value_len) {
  if ((m->len + m->tombstones + 1) * 4 > m->cap * 3) grow(m);
  uint64_t h = hash_key(key, key_len);
  hume_map_entry *slot;
  hume_map_entry *e = find_slot(m, key, key_len, h, &slot);
  if (e) {
    if (value_len > e->value_len) {
      char *bigger = realloc(e->value, value_len + 1);
      if (!bigger) oom();
      e->value = bigger;
    }
    if (value_len) memcpy(e->value, value, value_len);
    e->value[value_len] = 0;
    e->value_len = value_len;
    return;
  }
  if (slot->hash == TOMBSTONE) m->tombstones--;
  slot->hash = h;
  slot->key = dup_bytes(key, key_len);
  slot->key_len = key_len;
  slot->value = dup_bytes(value, value_len);
  slot->value_len = value_len;
  m->len++;
}

bool hume_map_remove(hume_map *m, const char *key, size_t key_len) {
  hume_map_entry *e = hume_map_get(m, key, key_len);
  if (!e) return false;
  free(e->key);
  free(e->value);
  e->key = e->value = NULL;
  e->key_len = e->value_len = 0;
  e->hash = TOMBSTONE;
  m->len--;
  m->tombstones++;
  return true;
}

static int compare_entries(const void *x, const void *y) {
  const hume_map_entry *const *a = x;
  const hume_map_entry *const *b = y;
  return compare_keys((*a)->key, (*a)->key_len, (*b)->key, (*b)->key_len);
}

hume_map_entry **hume_map_sorted(const hume_map *m) {
  hume_map_entry **out = malloc((m->len ? m->len : 1) * sizeof *out);
  if (!out) oom();
  size_t n = 0;
  for (size_t i = 0; i < m->cap; i++)
    if (m->slots[i].hash > TOMBSTONE) out[n++] = &m->slots[i];
  qsort(out, n, sizeof *out, compare_entries);
  return out;
}

void hume_map_clear(hume_map *m) {
  for (size_t i = 0; i < m->cap; i++) {
    if (m->slots[i].hash > TOMBSTONE) {
      free(m->slots[i].key);
      free(m->slots[i].value);
    }
  }
  if (m->cap) memset(m->slots, 0, m->cap * sizeof *m->slots);
  m->len = 0;
  m->tombstones = 0;
}

void hume_map_free(hume_map *m) {
  hume_map_clear(m);
  free(m->slots);
  m->slots = NULL;
  m->cap = 0;
}
