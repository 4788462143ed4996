"""Projection `{{name}}`: counts increments.

- `incremented` {"by": n} (n a positive integer) adds n to the count;
- `reset` {} sets it back to 0;
- every other kind is unknown.

State: {"count": n}. Query: {} answers {"count": n}.
"""

from hume_guest import Projection, Rejected, UnknownEvent, plugin


class Counter(Projection):
    name = "{{name}}"
    version = "0.1.0"
    kinds = ["incremented", "reset"]

    def init_state(self, projection):
        return {"count": 0}

    def handle(self, state, kind, data, event):
        if kind == "incremented":
            by = data.get("by") if isinstance(data, dict) else None
            if not isinstance(by, int) or isinstance(by, bool) or by < 1:
                raise Rejected(f"incremented by {by!r}: `by` must be an integer of at least 1")
            state["count"] += by
        elif kind == "reset":
            state["count"] = 0
        else:
            raise UnknownEvent()
        return state

    def query(self, state, request):
        return {"count": state["count"]}


WitWorld = plugin(Counter)
