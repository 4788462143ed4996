// JavaScript kit for Hume projection plugins.
//
// A projection is a plain object with functions over a JSON state:
//
//   import { UnknownEvent, Rejected } from "hume-guest";
//
//   export default {
//     name: "kv",
//     version: "0.1.0",
//     kinds: ["add", "remove"],            // [] = every kind
//     initState(projection) { return {}; },
//     handle(state, kind, data, event) {
//       if (kind === "add") { state[data.key] = data.value; return state; }
//       if (kind === "remove") { delete state[data.key]; return state; }
//       throw new UnknownEvent();
//     },
//   };
//
// `hume build` wraps that default export into the component's exports with
// `plugin()` below. `handle` returns the new state (it may mutate `state`
// and return it); it must throw *before* changing anything when it refuses
// an event, because the host keeps the state as it was before that event.
//
// - `throw new UnknownEvent()`: the kind is not handled (WIT `unknown-event`);
// - `throw new Rejected("why")`: invalid for the state (WIT `rejected(why)`);
// - any other exception thrown by `handle` (a TypeError on a missing field,
//   ...) is reported as `rejected` with its name and message.
//
// State is serialised as canonical JSON (`canonicalJson`): keys sorted by
// code point, no whitespace, UTF-8, numbers as Number.prototype.toString
// writes them, so the same events give byte-identical snapshots in every
// language Hume supports. Event data, snapshots and queries are read with
// `parseJson`: an integer literal beyond 2^53 - 1 arrives as a BigInt
// (12345678901234567n), so no digit is lost.
//
// This module has no component imports: `node --test` runs it as is (see
// `Harness`).

// Errors are recognised by this brand, not by `instanceof`, so that an app
// importing its own copy of this module still maps its errors correctly.
const BRAND = Symbol.for("hume-guest.event-error");

/** The projection does not handle this kind of event (WIT `unknown-event`). */
export class UnknownEvent extends Error {
  constructor(message = "unknown event kind") {
    super(message);
    this.name = "UnknownEvent";
    this[BRAND] = "unknown-event";
  }
}

/** The event is invalid for the current state (WIT `rejected(message)`). */
export class Rejected extends Error {
  constructor(message) {
    super(message);
    this.name = "Rejected";
    this[BRAND] = "rejected";
  }
}

function errorTag(err) {
  return err !== null && typeof err === "object" ? err[BRAND] : undefined;
}

/** A batch stopped at event `index` because of `error` (UnknownEvent or Rejected). */
export class BatchFailure extends Error {
  constructor(index, error) {
    super(`event ${index} failed: ${error.message}`);
    this.name = "BatchFailure";
    this.index = index;
    this.error = error;
  }
}

// ------------------------------------------------------------ canonical JSON
//
// One number model in every Hume kit: an integer literal within the 64-bit
// range (-2^63 ..= 2^64 - 1) is that exact integer; every other number is the
// correctly rounded double; a number too large for a double is refused.
// Written back: integers as their digits, doubles as Number.prototype.toString
// writes them (shortest round-trip digits, `2.0` as `2`, `-0` as `0`,
// exponent form below 1e-6 and from 1e21: `1e-7`, `1e+21`).
//
// JavaScript numbers are doubles, so an integer literal beyond 2^53 - 1
// (within 64 bits, e.g. 12345678901234567) is read as a BigInt, which keeps
// every digit; every other number is a plain number.

const MIN_INT = -(2n ** 63n);
const MAX_INT = 2n ** 64n - 1n;

function formatNumber(x) {
  return Number.isFinite(x) ? String(x) : "null";
}

function formatBigInt(v) {
  // Beyond the 64-bit range an integer is a double, as every kit reads it.
  return v >= MIN_INT && v <= MAX_INT ? v.toString() : formatNumber(Number(v));
}

const INTEGER = /^-?\d+$/;

/** The value of the number literal `text` that JSON.parse read as `value`. */
function exactNumber(value, text) {
  if (!Number.isFinite(value)) throw new SyntaxError(`number out of range: ${text.slice(0, 40)}`);
  if (Number.isSafeInteger(value) || !INTEGER.test(text)) return value;
  // An integer literal beyond 2^53 - 1: exact as a BigInt (even one a double
  // holds exactly, such as 2^63: String(2 ** 63) is 9223372036854776000).
  const exact = BigInt(text);
  return exact < MIN_INT || exact > MAX_INT ? value : exact; // beyond 64 bits: a double
}

// Whether JSON.parse hands a reviver the source text of numbers (ES2025;
// StarlingMonkey has it, Node.js 20 does not).
let reviverSeesSource = false;
JSON.parse("0", (key, value, context) => {
  reviverSeesSource = context !== undefined && context.source === "0";
  return value;
});

function reviveNumber(key, value, context) {
  return typeof value === "number" ? exactNumber(value, context.source) : value;
}

// An integer of 16 digits or more (maybe beyond 2^53), or an exponent of
// three digits (maybe beyond a double): those texts need the slow path.
const SLOW_NUMBERS = /\d{16}|[eE][-+]?\d{3}/;

/**
 * Parse JSON text as every Hume kit does (see above): JSON.parse, except
 * that exact integers beyond 2^53 become BigInts and numbers too large for
 * a double are refused (SyntaxError).
 */
export function parseJson(text) {
  if (!SLOW_NUMBERS.test(text)) return JSON.parse(text);
  return reviverSeesSource ? JSON.parse(text, reviveNumber) : parseSlowly(text);
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?/y;

/** A JSON parser that sees each number's text, for engines whose reviver does not. */
function parseSlowly(text) {
  let i = 0;
  const fail = (what) => {
    throw new SyntaxError(`${what} at position ${i}`);
  };
  const space = () => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c !== 32 && c !== 9 && c !== 10 && c !== 13) break;
      i++;
    }
  };
  const string = () => {
    const start = i++;
    while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    if (i >= text.length) fail("Unterminated string");
    i++;
    return JSON.parse(text.slice(start, i)); // escapes and control characters as JSON.parse
  };
  const value = () => {
    space();
    const c = text[i];
    if (c === "{") {
      i++;
      const object = {};
      space();
      if (text[i] === "}") {
        i++;
        return object;
      }
      for (;;) {
        space();
        if (text[i] !== '"') fail("Expected a string key");
        const key = string();
        space();
        if (text[i++] !== ":") fail("Expected ':'");
        // an own property even for "__proto__", as JSON.parse makes it
        Object.defineProperty(object, key, { value: value(), writable: true, enumerable: true, configurable: true });
        space();
        const next = text[i++];
        if (next === "}") return object;
        if (next !== ",") fail("Expected ',' or '}'");
      }
    }
    if (c === "[") {
      i++;
      const array = [];
      space();
      if (text[i] === "]") {
        i++;
        return array;
      }
      for (;;) {
        array.push(value());
        space();
        const next = text[i++];
        if (next === "]") return array;
        if (next !== ",") fail("Expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    for (const [word, literal] of [["true", true], ["false", false], ["null", null]]) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return literal;
      }
    }
    NUMBER.lastIndex = i;
    const match = NUMBER.exec(text);
    if (!match) fail("Unexpected token");
    i += match[0].length;
    return exactNumber(Number(match[0]), match[0]);
  };
  const result = value();
  space();
  if (i < text.length) fail("Unexpected non-whitespace character after JSON");
  return result;
}

function byCodePoint(a, b) {
  const la = a.length;
  const lb = b.length;
  let i = 0;
  while (i < la && i < lb) {
    const ca = a.codePointAt(i);
    const cb = b.codePointAt(i);
    if (ca !== cb) return ca < cb ? -1 : 1;
    i += ca > 0xffff ? 2 : 1;
  }
  return la - i === lb - i ? 0 : la - i < lb - i ? -1 : 1;
}

function sortedKeys(obj) {
  const keys = Object.keys(obj).sort();
  for (const key of keys) {
    // UTF-16 order differs from code-point order only around surrogates.
    if (/[\ud800-\uffff]/.test(key)) return keys.sort(byCodePoint);
  }
  return keys;
}

function encode(value, out) {
  switch (typeof value) {
    case "string":
      out.push(JSON.stringify(value));
      return;
    case "number":
      out.push(formatNumber(value));
      return;
    case "boolean":
      out.push(value ? "true" : "false");
      return;
    case "bigint":
      out.push(formatBigInt(value));
      return;
    case "object":
      if (value === null) {
        out.push("null");
        return;
      }
      if (value instanceof Map || value instanceof Set) {
        // JSON.stringify would write {} and lose every entry.
        throw new TypeError(
          `a ${value.constructor.name} is not JSON: turn it into an object or array (dumpState)`,
        );
      }
      if (Array.isArray(value)) {
        out.push("[");
        for (let i = 0; i < value.length; i++) {
          if (i) out.push(",");
          encode(value[i] === undefined ? null : value[i], out);
        }
        out.push("]");
        return;
      }
      if (typeof value.toJSON === "function") {
        encode(value.toJSON(), out);
        return;
      }
      {
        out.push("{");
        let first = true;
        for (const key of sortedKeys(value)) {
          const v = value[key];
          if (v === undefined || typeof v === "function") continue;
          if (!first) out.push(",");
          first = false;
          out.push(JSON.stringify(key), ":");
          encode(v, out);
        }
        out.push("}");
      }
      return;
    default:
      throw new TypeError(`${typeof value} is not JSON-serialisable`);
  }
}

/** Canonical JSON text of `value` (see the header of this module). */
export function canonicalJson(value) {
  const out = [];
  encode(value, out);
  return out.join("");
}

// ------------------------------------------------------------ the engine

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function parseData(bytes) {
  if (!bytes || bytes.length === 0) return null;
  return parseJson(decoder.decode(bytes));
}

let hostLog = null;
const LEVELS = ["trace", "debug", "info", "warn", "error"];

/** `log.info("...")` etc. write to the host's log (no-op outside a component). */
export const log = Object.fromEntries(
  LEVELS.map((level) => [level, (message) => hostLog && hostLog(level, String(message))]),
);

/** Used by the entry `hume build` generates: routes `log` to the host import. */
export function setHostLog(fn) {
  hostLog = fn;
}

/**
 * Wrap a projection definition into the functions the `projection` world
 * exports (camelCase, as componentize-js expects them).
 */
export function plugin(def) {
  if (typeof def.handle !== "function") {
    throw new TypeError("a projection needs a handle(state, kind, data, event) function");
  }
  const name = def.name || "projection";
  const version = def.version || "0.1.0";
  const kinds = Array.from(def.kinds || []);
  const initState = def.initState || (() => ({}));
  const restoreState = def.restoreState || ((s) => s);
  const dumpState = def.dumpState || ((s) => s);
  const handle = def.handle.bind(def);
  let state = null;
  let projectionName = "";

  /** Apply a batch; throws BatchFailure at the first failing event. */
  function apply(events) {
    let s = state;
    for (let index = 0; index < events.length; index++) {
      const event = events[index];
      try {
        let data;
        try {
          data = parseData(event.data);
        } catch (err) {
          throw new Rejected(`invalid data for event kind \`${event.kind}\`: not valid JSON: ${err.message}`);
        }
        s = handle(s, event.kind, data, event);
      } catch (err) {
        state = s;
        if (errorTag(err)) throw new BatchFailure(index, err);
        const why = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        throw new BatchFailure(index, new Rejected(why));
      }
    }
    state = s;
  }

  return {
    describe() {
      return { name, version, kinds, stateEncoding: "json" };
    },
    initState(projection) {
      projectionName = projection;
      state = initState.call(def, projection);
    },
    restore(projection, bytes) {
      let parsed;
      try {
        parsed = parseJson(decoder.decode(bytes));
      } catch (err) {
        throw `snapshot is not valid JSON: ${err.message}`;
      }
      projectionName = projection;
      state = restoreState.call(def, parsed);
    },
    handleEvents(events) {
      try {
        apply(events);
      } catch (err) {
        if (!(err instanceof BatchFailure)) throw err;
        const error =
          errorTag(err.error) === "unknown-event"
            ? { tag: "unknown-event" }
            : { tag: "rejected", val: err.error.message };
        // componentize-js turns a thrown plain value into the `err` payload.
        throw { index: err.index, error };
      }
    },
    snapshot() {
      return encoder.encode(canonicalJson(dumpState.call(def, state)));
    },
    onCaughtUp(offset) {
      if (def.onCaughtUp) def.onCaughtUp(state, offset);
    },
    query(request) {
      if (!def.query) throw "this projection answers no queries";
      try {
        const parsed = request.length ? parseJson(decoder.decode(request)) : null;
        return encoder.encode(canonicalJson(def.query(state, parsed)));
      } catch (err) {
        throw err instanceof Error ? err.message : String(err);
      }
    },
    // For tests (Harness): not part of the world.
    _apply: apply,
    _state: () => state,
    _projection: () => projectionName,
  };
}

/**
 * Drive a projection in plain Node.js, exactly as the component does:
 *
 *   const h = new Harness(kv);
 *   h.apply("add", { key: "a", value: 1 });
 *   assert.equal(h.snapshot(), '{"a":1}');
 */
export class Harness {
  constructor(def, projection = "test") {
    this.plugin = plugin(def);
    this.plugin.initState(projection);
    this.position = 0n;
  }

  /** The current in-memory state. */
  get state() {
    return this.plugin._state();
  }

  /** Apply one event; throws UnknownEvent or Rejected. */
  apply(kind, data = null, stream = "test") {
    try {
      this.applyBatch([[kind, data, stream]]);
    } catch (err) {
      throw err instanceof BatchFailure ? err.error : err;
    }
  }

  /** Apply [kind, data, stream?] tuples as one batch; throws BatchFailure. */
  applyBatch(events) {
    const batch = events.map(([kind, data, stream = "test"]) => {
      this.position += 1n;
      return {
        position: this.position,
        stream,
        revision: this.position,
        kind,
        data: data === null || data === undefined ? new Uint8Array() : encoder.encode(canonicalJson(data)),
        metadata: new Uint8Array(),
        timestamp: 0n,
      };
    });
    this.plugin._apply(batch);
  }

  /** The canonical JSON snapshot, as a string. */
  snapshot() {
    return decoder.decode(this.plugin.snapshot());
  }

  /** Replace the state with a snapshot (string or bytes). */
  restore(snapshot) {
    const bytes = typeof snapshot === "string" ? encoder.encode(snapshot) : snapshot;
    this.plugin.restore(this.plugin._projection(), bytes);
  }

  /** Ask a query (a JSON-able value); returns the parsed answer. */
  query(request) {
    return parseJson(decoder.decode(this.plugin.query(encoder.encode(canonicalJson(request)))));
  }
}
