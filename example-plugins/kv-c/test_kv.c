/* Native unit tests of kv.c: `make test` (cc, no wasm needed). */
#include "hume_testing.h"

static bool rejected_with(const char *kind, const char *data, const char *needle) {
  hume_buf message = {0};
  hume_status status = hume_test_apply(kind, data, &message);
  hume_buf_putc(&message, 0);
  bool ok = status == HUME_REJECTED && strstr((char *)message.ptr, needle) != NULL;
  hume_buf_free(&message);
  return ok;
}

int main(void) {
  /* add sets and overwrites; nested values come out canonical */
  hume_test_init("test");
  HUME_CHECK(hume_test_apply("add", "{\"key\":\"b\",\"value\":{\"nested\":[1,2.5,null], \"a\": 1e2}}", NULL) == HUME_OK);
  HUME_CHECK(hume_test_apply("add", "{\"key\":\"a\",\"value\":1}", NULL) == HUME_OK);
  HUME_CHECK(hume_test_apply("add", "{\"key\":\"a\",\"value\":\"one\"}", NULL) == HUME_OK);
  HUME_CHECK_SNAPSHOT("{\"a\":\"one\",\"b\":{\"a\":100,\"nested\":[1,2.5,null]}}");

  /* remove deletes and tolerates missing keys */
  HUME_CHECK(hume_test_apply("remove", "{\"key\":\"a\"}", NULL) == HUME_OK);
  HUME_CHECK(hume_test_apply("remove", "{\"key\":\"never\"}", NULL) == HUME_OK);
  HUME_CHECK_SNAPSHOT("{\"b\":{\"a\":100,\"nested\":[1,2.5,null]}}");

  /* other kinds are unknown; bad data is rejected; nothing changes */
  hume_test_init("test");
  HUME_CHECK(hume_test_apply("rename", "{\"key\":\"a\"}", NULL) == HUME_UNKNOWN_EVENT);
  HUME_CHECK(rejected_with("add", "{\"key\":\"a\"}", "value"));
  HUME_CHECK(rejected_with("remove", "{\"key\":7}", "key"));
  HUME_CHECK(rejected_with("add", "{\"key\":", "not valid JSON"));
  HUME_CHECK_SNAPSHOT("{}");

  /* strings as serde_json escapes them, numbers as every Hume kit writes them */
  HUME_CHECK(hume_test_apply("add", "{\"key\":\"\\u00e9\\n\",\"value\":[\"\\u0001\\/\", 0.1, 1e16, 1e21, 1e-7, 0.00001, -0, 2.0, 12345678901234567, 12345678901234567.0, 18446744073709551616]}", NULL) == HUME_OK);
  HUME_CHECK_SNAPSHOT("{\"\xc3\xa9\\n\":[\"\\u0001/\",0.1,10000000000000000,1e+21,1e-7,0.00001,0,2,12345678901234567,12345678901234568,18446744073709552000]}");
  HUME_CHECK(rejected_with("add", "{\"key\":\"big\",\"value\":1e400}", "invalid data for event kind `add`: not valid JSON: number out of range"));

  /* a snapshot restores */
  char *snap = hume_test_snapshot();
  hume_test_init("test");
  HUME_CHECK(hume_test_restore("test", snap));
  HUME_CHECK_SNAPSHOT(snap);
  free(snap);
  return hume_test_done();
}
