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
  if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
    ps->p++;
    if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
    if (ps->p >= ps->end || !is_digit(*ps->p)) { ps->error = "invalid number"; return NULL; }
    while (ps->p < ps->end && is_digit(*ps->p)) ps->p++;
  }
  hume_json *v = new_value(ps, HUME_JSON_NUMBER);
  v->u.number.text = (const char *)start;
  v->u.number.len = (size_t)(ps->p - start);
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

/* Write a double as Rust's serde_json (1.0.154, zmij) does: shortest
 * round-trip digits; fixed notation when the decimal exponent is in -5..=15,
 * else 1.5e+300 / 1e-7. */
static void write_f64(hume_buf *out, double x) {
  if (x != x || x - x != 0) { hume_buf_puts(out, "null"); return; }
  if (x == 0) { hume_buf_puts(out, signbit(x) ? "-0.0" : "0.0"); return; }
  char tmp[40];
  int prec;
  for (prec = 1; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, x);
    if (strtod(tmp, NULL) == x) break;
  }
  /* tmp = [-]d[.ddd]e[+-]XX : collect the digits and the exponent */
  char digits[24];
  int n = 0;
  const char *p = tmp;
  bool neg = false;
  if (*p == '-') { neg = true; p++; }
  for (; *p && *p != 'e'; p++)
    if (*p != '.') digits[n++] = *p;
  int exp10 = atoi(p + 1);
  while (n > 1 && digits[n - 1] == '0') n--;
  digits[n] = 0;
  int kk = exp10 + 1; /* position of the decimal point */
  int k = kk - n;
  if (neg) hume_buf_putc(out, '-');
  if (k >= 0 && kk <= 16) {
    hume_buf_push(out, digits, (size_t)n);
    for (int i = 0; i < k; i++) hume_buf_putc(out, '0');
    hume_buf_puts(out, ".0");
  } else if (kk > 0 && kk <= 16) {
    hume_buf_push(out, digits, (size_t)kk);
    hume_buf_putc(out, '.');
    hume_buf_push(out, digits + kk, (size_t)(n - kk));
  } else if (kk > -5 && kk <= 0) {
    hume_buf_puts(out, "0.");
    for (int i = 0; i < -kk; i++) hume_buf_putc(out, '0');
    hume_buf_push(out, digits, (size_t)n);
  } else {
    hume_buf_putc(out, digits[0]);
    if (n > 1) {
      hume_buf_putc(out, '.');
      hume_buf_push(out, digits + 1, (size_t)(n - 1));
    }
    hume_buf_printf(out, "e%+d", kk - 1);
  }
}

static void write_number(hume_buf *out, const char *t, size_t n) {
  if (is_integer_literal(t, n)) {
    bool neg = t[0] == '-';
    uint64_t mag;
    if (digits_u64(t + neg, n - neg, &mag) && (!neg || (mag != 0 && mag <= (uint64_t)INT64_MAX + 1))) {
      hume_buf_push(out, t, n); /* JSON forbids leading zeros: already canonical */
      return;
    }
  }
  char tmp[64];
  char *heap = NULL;
  const char *s = tmp;
  if (n < sizeof tmp) {
    memcpy(tmp, t, n);
    tmp[n] = 0;
  } else {
    heap = malloc(n + 1);
    if (!heap) oom();
    memcpy(heap, t, n);
    heap[n] = 0;
    s = heap;
  }
  write_f64(out, strtod(s, NULL));
  free(heap);
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
