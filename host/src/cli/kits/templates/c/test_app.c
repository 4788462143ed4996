/* Native unit tests: `make test` (cc, no wasm needed). */
#include "hume_testing.h"

int main(void) {
  hume_test_init("test");
  HUME_CHECK(hume_test_apply("incremented", "{\"by\":2}", NULL) == HUME_OK);
  HUME_CHECK(hume_test_apply("incremented", "{\"by\":3}", NULL) == HUME_OK);
  HUME_CHECK_SNAPSHOT("{\"count\":5}");
  HUME_CHECK(hume_test_apply("reset", "{}", NULL) == HUME_OK);
  HUME_CHECK_SNAPSHOT("{\"count\":0}");

  HUME_CHECK(hume_test_apply("incremented", "{\"by\":0}", NULL) == HUME_REJECTED);
  HUME_CHECK(hume_test_apply("decremented", "{\"by\":1}", NULL) == HUME_UNKNOWN_EVENT);
  HUME_CHECK_SNAPSHOT("{\"count\":0}");
  return hume_test_done();
}
