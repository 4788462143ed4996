// Unit tests in plain Node.js: `node --test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Harness, Rejected, UnknownEvent } from "./hume-guest.js";
import counter from "./app.js";

test("counts increments and resets", () => {
  const h = new Harness(counter);
  h.apply("incremented", { by: 2 });
  h.apply("incremented", { by: 3 });
  assert.equal(h.snapshot(), '{"count":5}');
  h.apply("reset", {});
  assert.deepEqual(h.state, { count: 0 });
});

test("refuses what it does not know", () => {
  const h = new Harness(counter);
  assert.throws(() => h.apply("incremented", { by: 0 }), Rejected);
  assert.throws(() => h.apply("decremented", { by: 1 }), UnknownEvent);
  assert.equal(h.snapshot(), '{"count":0}');
});
