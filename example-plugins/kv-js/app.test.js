// Unit tests of the kv projection in plain Node.js: `node --test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BatchFailure, Harness, Rejected, UnknownEvent, canonicalJson } from "../../guest-sdk/js/hume-guest.js";
import kv from "./app.js";

test("add sets and overwrites", () => {
  const h = new Harness(kv);
  h.apply("add", { key: "b", value: { nested: [1, 2.5, null] } });
  h.apply("add", { key: "a", value: 1 });
  h.apply("add", { key: "a", value: "one" });
  assert.equal(h.snapshot(), '{"a":"one","b":{"nested":[1,2.5,null]}}');
});

test("remove deletes and tolerates missing keys", () => {
  const h = new Harness(kv);
  h.apply("add", { key: "a", value: 1 });
  h.apply("remove", { key: "a" });
  h.apply("remove", { key: "never" });
  assert.equal(h.snapshot(), "{}");
});

test("other kinds are unknown and change nothing", () => {
  const h = new Harness(kv);
  assert.throws(
    () => h.applyBatch([["add", { key: "a", value: 1 }], ["rename", { key: "a" }]]),
    (err) => err instanceof BatchFailure && err.index === 1 && err.error instanceof UnknownEvent,
  );
  assert.equal(h.snapshot(), '{"a":1}');
});

test("bad data is rejected", () => {
  const h = new Harness(kv);
  assert.throws(() => h.apply("add", { key: "a" }), Rejected);
  assert.throws(() => h.apply("remove", { key: 7 }), Rejected);
  assert.throws(() => h.apply("add", null), Rejected);
  assert.equal(h.snapshot(), "{}");
});

test("query by key", () => {
  const h = new Harness(kv);
  h.apply("add", { key: "a", value: [1] });
  assert.deepEqual(h.query({ key: "a" }), { value: [1] });
  assert.deepEqual(h.query({ key: "b" }), { value: null });
});

test("canonical JSON matches serde_json", () => {
  assert.equal(canonicalJson({ b: 1, a: [0.1, 1.5e300, 1e-7, 0.00001, 123.5, -2.5] }),
    '{"a":[0.1,1.5e+300,1e-7,0.00001,123.5,-2.5],"b":1}');
  assert.equal(canonicalJson({ "\u{1F600}": 1, "\uFFFF": 2, "é\n": "\u0001" }),
    '{"é\\n":"\\u0001","\uFFFF":2,"\u{1F600}":1}');
});
