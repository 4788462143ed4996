// Projection `{{name}}`: counts increments.
//
// - `incremented` {"by": n} (n a positive integer) adds n to the count;
// - `reset` {} sets it back to 0;
// - every other kind is unknown.
//
// State: {"count": n}. Query: {} answers {"count": n}.
import { Rejected, UnknownEvent } from "./hume-guest.js";

export default {
  name: "{{name}}",
  version: "0.1.0",
  kinds: ["incremented", "reset"],

  initState() {
    return { count: 0 };
  },

  handle(state, kind, data) {
    if (kind === "incremented") {
      const by = data?.by;
      if (!Number.isInteger(by) || by < 1) {
        throw new Rejected(`incremented by ${JSON.stringify(by)}: \`by\` must be an integer of at least 1`);
      }
      state.count += by;
    } else if (kind === "reset") {
      state.count = 0;
    } else {
      throw new UnknownEvent();
    }
    return state;
  },

  query(state) {
    return { count: state.count };
  },
};
