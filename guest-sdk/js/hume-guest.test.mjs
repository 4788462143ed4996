// Unit tests of the JavaScript kit itself: canonical JSON and the number
// model shared with the Rust, Python and C kits. Run: node --test (here).
// Node.js 20's JSON.parse reviver does not see number sources, so the kit's
// own slow parser runs; `node --harmony-json-parse-with-source --test` runs
// the reviver path that StarlingMonkey (the component) takes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { BatchFailure, Harness, UnknownEvent, canonicalJson, parseJson } from "./hume-guest.js";

const numbers = JSON.parse(readFileSync(new URL("../testdata/numbers.json", import.meta.url), "utf8"));

const store = {
  name: "store",
  kinds: [],
  initState: () => ({}),
  handle(state, kind, data) {
    if (kind === "boom") throw new UnknownEvent();
    state[kind] = data;
    return state;
  },
};

test("shared number vectors: read as event data, written canonically", () => {
  assert.ok(numbers.length > 500);
  const failures = [];
  for (const [text, expected] of numbers) {
    let got;
    try {
      got = canonicalJson(parseJson(text));
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      got = null;
    }
    if (got !== expected) failures.push(`${text}: expected ${expected}, got ${got}`);
  }
  assert.deepEqual(failures, []);
});

test("numbers inside documents take the same path", () => {
  const text = '{"b":[12345678901234567, 9007199254740993.0, 1e21, -0, 2.0, 18446744073709551616],"a":{"__proto__":1}}';
  const value = parseJson(text);
  assert.equal(value.b[0], 12345678901234567n);
  assert.equal(value.b[1], 9007199254740992); // a float literal: a double
  assert.equal(Object.getPrototypeOf(value.a), Object.prototype);
  assert.equal(
    canonicalJson(value),
    '{"a":{"__proto__":1},"b":[12345678901234567,9007199254740992,1e+21,0,2,18446744073709552000]}',
  );
  for (const bad of ["1e400", "[1,1e999]", '{"a":' + "9".repeat(400) + "}", "NaN", "[1,]", '{"a":1}x', '"\u0001"']) {
    assert.throws(() => parseJson(bad), SyntaxError, bad);
  }
});

test("JS values are written as every kit writes them", () => {
  const cases = [
    [0, "0"], [-0, "0"], [2.0, "2"], [0.1 + 0.2, "0.30000000000000004"], [1e20, "100000000000000000000"],
    [1e21, "1e+21"], [1e-7, "1e-7"], [0.000001, "0.000001"], [5e-324, "5e-324"], [NaN, "null"],
    [Infinity, "null"], [12345678901234567n, "12345678901234567"], [2n ** 64n, "18446744073709552000"],
    [-(2n ** 63n), "-9223372036854775808"],
  ];
  for (const [value, expected] of cases) assert.equal(canonicalJson(value), expected, String(value));
});

test("keys are sorted at every depth, whatever the insertion order", () => {
  const h = new Harness(store);
  h.apply("order", { status: "open", items: { b: { quantity: 2, price: 0.1 }, a: {} }, total: 2.0 });
  h.apply("a", [{ z: 1, y: { d: null, c: true } }]);
  assert.equal(
    h.snapshot(),
    '{"a":[{"y":{"c":true,"d":null},"z":1}],"order":{"items":{"a":{},"b":{"price":0.1,"quantity":2}},"status":"open","total":2}}',
  );
  const keys = { é: 1, z: 2, "\ue000": 3, "😀": 4, A: 5, "": 6, 'a"b': 7, "\n": 8, 10: 9, 9: 10 };
  assert.equal(
    canonicalJson(keys),
    '{"":6,"\\n":8,"10":9,"9":10,"A":5,"a\\"b":7,"z":2,"é":1,"\ue000":3,"😀":4}',
  );
});

test("a Map or Set in the state is refused, not written as {}", () => {
  assert.throws(() => canonicalJson({ m: new Map([["a", 1]]) }), /Map is not JSON/);
  assert.throws(() => canonicalJson(new Set([1])), /Set is not JSON/);
});

test("event data that is not JSON is rejected, naming the kind", () => {
  const h = new Harness(store);
  for (const raw of ['{"x": 1e400}', '{"x": NaN}', '{"x":']) {
    const batch = [{ position: 1n, stream: "s", revision: 1n, kind: "add", data: new TextEncoder().encode(raw), metadata: new Uint8Array(), timestamp: 0n }];
    assert.throws(
      () => h.plugin._apply(batch),
      (err) => err instanceof BatchFailure && err.error.message.startsWith("invalid data for event kind `add`: "),
      raw,
    );
  }
});

test("a snapshot restores to the same bytes", () => {
  const h = new Harness(store);
  h.apply("n", { v: [1e20, 1e21, 2.0, -0, 12345678901234567n, 5e-324, 2n ** 64n] });
  const first = h.snapshot();
  assert.equal(first, '{"n":{"v":[100000000000000000000,1e+21,2,0,12345678901234567,5e-324,18446744073709552000]}}');
  h.restore(first);
  assert.equal(h.snapshot(), first);
  assert.equal(h.state.n.v[4], 12345678901234567n);
});
