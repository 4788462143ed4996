// The `bank` projection in JavaScript: account balances (same rules as the
// Rust example `example-plugins/bank`).
//
// - `opened` {"account"}: opens the account with balance 0 (opening an open
//   account is rejected);
// - `deposited` {"account", "amount"}: adds `amount`;
// - `withdrawn` {"account", "amount"}: subtracts `amount`; no overdraft.
//
// Money on an account that was never opened is rejected, naming the account.
// Amounts are integers from 1 to 2^53 - 1, and so is every balance.
//
// State: {"accounts": {"<id>": balance, ...}}.
// Query: {"account": "<id>"} -> {"balance": n}.
import { Rejected, UnknownEvent } from "../../guest-sdk/js/hume-guest.js";

export const MAX_AMOUNT = Number.MAX_SAFE_INTEGER; // 2^53 - 1

function field(data, name, kind) {
  if (data === null || typeof data !== "object" || Array.isArray(data) || !(name in data)) {
    throw new Rejected(`invalid data for event kind \`${kind}\`: missing field \`${name}\``);
  }
  return data[name];
}

function accountOf(data, kind) {
  const account = field(data, "account", kind);
  if (typeof account !== "string") {
    throw new Rejected(`invalid data for event kind \`${kind}\`: \`account\` must be a string`);
  }
  return account;
}

function amountOf(data, kind, what, account) {
  const amount = field(data, "amount", kind);
  // The kit reads an integer beyond 2^53 - 1 as a BigInt (every digit kept):
  // out of range, and named exactly as the other languages name it.
  if (typeof amount !== "bigint" && !Number.isInteger(amount)) {
    throw new Rejected(`invalid data for event kind \`${kind}\`: \`amount\` must be an integer`);
  }
  if (typeof amount === "bigint" || amount < 1 || amount > MAX_AMOUNT) {
    throw new Rejected(
      `${what} amount for account ${account} must be an integer from 1 to ${MAX_AMOUNT}, got ${amount}`,
    );
  }
  return amount;
}

export default {
  name: "bank",
  version: "0.1.0",
  kinds: ["opened", "deposited", "withdrawn"],

  // Balances live in a Map (any account id is a safe key).
  initState() {
    return new Map();
  },
  dumpState(accounts) {
    return { accounts: Object.fromEntries(accounts) };
  },
  restoreState(json) {
    return new Map(Object.entries(json.accounts));
  },

  handle(accounts, kind, data) {
    if (kind === "opened") {
      const account = accountOf(data, kind);
      if (accounts.has(account)) throw new Rejected(`account ${account} is already open`);
      accounts.set(account, 0);
    } else if (kind === "deposited") {
      const account = accountOf(data, kind);
      const amount = amountOf(data, kind, "deposit", account);
      if (!accounts.has(account)) {
        throw new Rejected(`deposit on account ${account}, which was never opened`);
      }
      const next = accounts.get(account) + amount;
      if (next > MAX_AMOUNT) {
        throw new Rejected(
          `deposit of ${amount} would take account ${account} above the largest balance ${MAX_AMOUNT}`,
        );
      }
      accounts.set(account, next);
    } else if (kind === "withdrawn") {
      const account = accountOf(data, kind);
      const amount = amountOf(data, kind, "withdrawal", account);
      if (!accounts.has(account)) {
        throw new Rejected(`withdrawal on account ${account}, which was never opened`);
      }
      const balance = accounts.get(account);
      if (amount > balance) {
        throw new Rejected(
          `insufficient funds: account ${account} has ${balance}, cannot withdraw ${amount}`,
        );
      }
      accounts.set(account, balance - amount);
    } else {
      throw new UnknownEvent();
    }
    return accounts;
  },

  query(accounts, request) {
    if (
      request === null || typeof request !== "object" || typeof request.account !== "string" ||
      Object.keys(request).length !== 1
    ) {
      throw new Error('bad query: bank answers {"account": "<id>"}');
    }
    if (!accounts.has(request.account)) throw new Error(`account ${request.account} was never opened`);
    return { balance: accounts.get(request.account) };
  },
};
