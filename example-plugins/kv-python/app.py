"""The seed's `kv` projection in Python: a key/value map built from events.

- `add`    {"key": k, "value": v}  sets k to v (any JSON value);
- `remove` {"key": k}              deletes k (no-op when absent);
- any other kind is unknown (a strict projection faults on it).

State: {"<key>": <value>, ...}, canonical JSON (keys sorted).
"""

from hume_guest import Projection, Rejected, UnknownEvent, plugin


def _key(data, kind):
    if not isinstance(data, dict) or "key" not in data:
        raise Rejected(f"invalid data for event kind `{kind}`: missing field `key`")
    if not isinstance(data["key"], str):
        raise Rejected(f"invalid data for event kind `{kind}`: `key` must be a string")
    return data["key"]


class Kv(Projection):
    name = "kv"
    version = "0.1.0"
    kinds = ["add", "remove"]

    def init_state(self, projection):
        return {}

    def handle(self, state, kind, data, event):
        if kind == "add":
            key = _key(data, kind)
            if "value" not in data:
                raise Rejected("invalid data for event kind `add`: missing field `value`")
            state[key] = data["value"]
        elif kind == "remove":
            state.pop(_key(data, kind), None)
        else:
            raise UnknownEvent()
        return state

    def query(self, state, request):
        # {"key": k} -> {"value": v} (null when absent)
        if not isinstance(request, dict) or not isinstance(request.get("key"), str):
            raise ValueError('kv answers {"key": "<key>"}')
        return {"value": state.get(request["key"])}


WitWorld = plugin(Kv)
