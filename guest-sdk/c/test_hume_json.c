/*
 * Unit tests of the C kit's JSON: the number model shared with the Rust,
 * Python and JS kits (guest-sdk/testdata/numbers.json) and canonical
 * objects. Natively:
 *
 *   cc -I. test_hume_json.c hume_json.c -lm -o test_hume_json && ./test_hume_json [numbers.json]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hume_json.h"

static int passed, failed;

#define CHECK(cond)                                                   \
  do {                                                                \
    if (cond) passed++;                                               \
    else {                                                            \
      failed++;                                                       \
      fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                 \
  } while (0)

/* The canonical text of `json`, or "<error>" (a static buffer). */
static const char *canonical(const char *json) {
  static hume_buf out;
  hume_buf_clear(&out);
  if (!hume_json_canonicalize(&out, json, strlen(json), NULL)) return "<error>";
  hume_buf_putc(&out, 0);
  return (const char *)out.ptr;
}

static void check_canonical(const char *json, const char *expected) {
  const char *got = canonical(json);
  if (strcmp(got, expected) == 0) {
    passed++;
  } else {
    failed++;
    fprintf(stderr, "canonical(%s)\n  got:      %s\n  expected: %s\n", json, got, expected);
  }
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    exit(2);
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = malloc((size_t)n + 1);
  if (fread(text, 1, (size_t)n, f) != (size_t)n) exit(2);
  fclose(f);
  text[n] = 0;
  *len = (size_t)n;
  return text;
}

/* guest-sdk/testdata/numbers.json: [[input, expected or null], ...] */
static void shared_number_vectors(const char *path) {
  size_t len;
  char *text = read_file(path, &len);
  hume_arena arena = {0};
  const hume_json *pairs = hume_json_parse(&arena, text, len, NULL);
  CHECK(pairs && pairs->type == HUME_JSON_ARRAY && pairs->u.array.len > 500);
  for (size_t i = 0; pairs && i < pairs->u.array.len; i++) {
    const hume_json *pair = pairs->u.array.items[i];
    const char *input = hume_json_str(pair->u.array.items[0], NULL);
    const char *expected = hume_json_str(pair->u.array.items[1], NULL);
    check_canonical(input, expected ? expected : "<error>");
  }
  hume_arena_free(&arena);
  free(text);
}

static void objects_are_sorted_at_every_depth(void) {
  check_canonical("{\"status\": \"open\", \"items\": {\"b\": {\"quantity\": 2, \"price\": 0.1}, \"a\": {}}, \"total\": 2.0}",
                  "{\"items\":{\"a\":{},\"b\":{\"price\":0.1,\"quantity\":2}},\"status\":\"open\",\"total\":2}");
  check_canonical("[{\"z\": 1, \"y\": {\"d\": null, \"c\": true}}]", "[{\"y\":{\"c\":true,\"d\":null},\"z\":1}]");
  /* code point order, escapes, a repeated key keeps its last value */
  check_canonical("{\"\xc3\xa9\":1,\"z\":2,\"\xee\x80\x80\":3,\"\xf0\x9f\x98\x80\":4,\"A\":5,\"\":6,\"a\\\"b\":7,\"\\n\":8}",
                  "{\"\":6,\"\\n\":8,\"A\":5,\"a\\\"b\":7,\"z\":2,\"\xc3\xa9\":1,\"\xee\x80\x80\":3,\"\xf0\x9f\x98\x80\":4}");
  check_canonical("{\"b\":1,\"a\":2,\"b\":3}", "{\"a\":2,\"b\":3}");
  check_canonical("\"\\u0001\\/\\u00e9\"", "\"\\u0001/\xc3\xa9\"");
  check_canonical("{\"a\":", "<error>");
}

static void doubles_and_accessors(void) {
  hume_buf b = {0};
  double cases[] = {0.0, -0.0, 2.0, 0.1 + 0.2, 1e20, 1e21, 1e-7, 0.000001, 5e-324, 1.7976931348623157e308};
  const char *expected[] = {"0", "0", "2", "0.30000000000000004", "100000000000000000000", "1e+21", "1e-7",
                            "0.000001", "5e-324", "1.7976931348623157e+308"};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    hume_buf_clear(&b);
    hume_buf_f64(&b, cases[i]);
    hume_buf_putc(&b, 0);
    if (strcmp((const char *)b.ptr, expected[i]) == 0) passed++;
    else {
      failed++;
      fprintf(stderr, "hume_buf_f64(%.17g): got %s, expected %s\n", cases[i], (const char *)b.ptr, expected[i]);
    }
  }
  hume_buf_free(&b);

  hume_arena arena = {0};
  const hume_json *v = hume_json_parse(&arena, "[12345678901234567.0, -0, 9223372036854775808]", 46, NULL);
  double x;
  int64_t i;
  CHECK(v && hume_json_f64(v->u.array.items[0], &x) && x == 12345678901234568.0);
  CHECK(!hume_json_i64(v->u.array.items[0], &i));
  CHECK(!hume_json_i64(v->u.array.items[1], &i)); /* -0 is a float, as in serde_json */
  CHECK(!hume_json_i64(v->u.array.items[2], &i)); /* beyond int64_t */
  CHECK(!hume_json_f64(NULL, &x));
  const char *why = NULL;
  CHECK(!hume_json_parse(&arena, "{\"x\": 1e400}", 12, &why) && strcmp(why, "number out of range") == 0);
  hume_arena_free(&arena);
}

int main(int argc, char **argv) {
  shared_number_vectors(argc > 1 ? argv[1] : "../testdata/numbers.json");
  objects_are_sorted_at_every_depth();
  doubles_and_accessors();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
