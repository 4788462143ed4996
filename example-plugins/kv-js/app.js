// The seed's `kv` projection in JavaScript: a key/value map built from events.
//
// - `add`    {"key": k, "value": v}  sets k to v (any JSON value);
// - `remove` {"key": k}              deletes k (no-op when absent);
// - any other kind is unknown (a strict projection faults on it).
//
// State: {"<key>": <value>, ...}, canonical JSON (keys sorted).
import { Rejected, UnknownEvent } from "../../guest-sdk/js/hume-guest.js";

function keyOf(data, kind) {
  if (data === null || typeof data !== "object" || Array.isArray(data) || !("key" in data)) {
    throw new Rejected(`invalid data for event kind \`${kind}\`: missing field \`key\``);
  }
  if (typeof data.key !== "string") {
    throw new Rejected(`invalid data for event kind \`${kind}\`: \`key\` must be a string`);
  }
  return data.key;
}

export default {
  name: "kv",
  version: "0.1.0",
  kinds: ["add", "remove"],

  initState() {
    return new Map();
  },

  handle(state, kind, data) {
    if (kind === "add") {
      const key = keyOf(data, kind);
      if (!("value" in data)) {
        throw new Rejected("invalid data for event kind `add`: missing field `value`");
      }
      state.set(key, data.value);
    } else if (kind === "remove") {
      state.delete(keyOf(data, kind));
    } else {
      throw new UnknownEvent();
    }
    return state;
  },

  // A Map keeps any key (even "__proto__") safely; snapshots are plain objects.
  dumpState(state) {
    return Object.fromEntries(state);
  },
  restoreState(json) {
    return new Map(Object.entries(json));
  },

  // {"key": k} -> {"value": v} (null when absent)
  query(state, request) {
    if (request === null || typeof request !== "object" || typeof request.key !== "string") {
      throw new Error('kv answers {"key": "<key>"}');
    }
    const value = state.get(request.key);
    return { value: value === undefined ? null : value };
  },
};
