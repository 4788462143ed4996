// Unit tests of the bank projection in plain Node.js: `node --test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BatchFailure, Harness, Rejected, UnknownEvent } from "../../guest-sdk/js/hume-guest.js";
import bank, { MAX_AMOUNT } from "./app.js";

test("deposits and withdrawals move the balance", () => {
  const h = new Harness(bank);
  h.apply("opened", { account: "42" });
  h.apply("opened", { account: "7" });
  h.apply("deposited", { account: "42", amount: 100 });
  h.apply("withdrawn", { account: "42", amount: 30 });
  h.apply("deposited", { account: "7", amount: 5 });
  assert.equal(h.snapshot(), '{"accounts":{"42":70,"7":5}}');
  assert.deepEqual(h.query({ account: "42" }), { balance: 70 });
});

test("money on an unopened account is rejected naming it", () => {
  const h = new Harness(bank);
  h.apply("opened", { account: "42" });
  assert.throws(
    () => h.applyBatch([["deposited", { account: "42", amount: 10 }], ["deposited", { account: "99", amount: 10 }]]),
    (err) => err instanceof BatchFailure && err.index === 1 && /account 99/.test(err.error.message),
  );
  assert.equal(h.snapshot(), '{"accounts":{"42":10}}');
});

test("no overdraft", () => {
  const h = new Harness(bank);
  h.apply("opened", { account: "1" });
  h.apply("deposited", { account: "1", amount: 10 });
  h.apply("withdrawn", { account: "1", amount: 10 });
  assert.throws(() => h.apply("withdrawn", { account: "1", amount: 1 }), {
    name: "Rejected",
    message: "insufficient funds: account 1 has 0, cannot withdraw 1",
  });
});

test("amounts must be positive safe integers", () => {
  const h = new Harness(bank);
  h.apply("opened", { account: "1" });
  for (const bad of [0, -5, 1.5, "10", true, MAX_AMOUNT + 2]) {
    assert.throws(() => h.apply("deposited", { account: "1", amount: bad }), Rejected);
  }
  // Beyond 2^53 the kit reads a BigInt: the message names the exact amount.
  assert.throws(() => h.apply("deposited", { account: "1", amount: 12345678901234567n }), {
    message: "deposit amount for account 1 must be an integer from 1 to 9007199254740991, got 12345678901234567",
  });
  h.apply("deposited", { account: "1", amount: MAX_AMOUNT });
  assert.throws(() => h.apply("deposited", { account: "1", amount: 1 }), /above the largest balance/);
});

test("other kinds are unknown", () => {
  assert.throws(() => new Harness(bank).apply("closed", { account: "1" }), UnknownEvent);
});

test("a snapshot restores into a fresh instance", () => {
  const h = new Harness(bank);
  h.apply("opened", { account: "__proto__" });
  h.apply("deposited", { account: "__proto__", amount: 3 });
  const g = new Harness(bank);
  g.restore(h.snapshot());
  g.apply("withdrawn", { account: "__proto__", amount: 2 });
  assert.equal(g.snapshot(), '{"accounts":{"__proto__":1}}');
});
