"""Python kit for Hume projection plugins.

A projection is a class with plain-Python methods over a JSON state::

    from hume_guest import Projection, UnknownEvent, Rejected, plugin

    class Kv(Projection):
        name = "kv"
        version = "0.1.0"
        kinds = ["add", "remove"]          # [] = every kind

        def init_state(self, projection):  # the initial state (JSON-able)
            return {}

        def handle(self, state, kind, data, event):
            if kind == "add":
                state[data["key"]] = data["value"]
                return state
            if kind == "remove":
                state.pop(data["key"], None)
                return state
            raise UnknownEvent()

    WitWorld = plugin(Kv)                  # what componentize-py exports

`handle` returns the new state (it may mutate `state` and return it). It must
raise *before* changing anything when it refuses an event: the host keeps
the state as it was before the failing event.

- ``raise UnknownEvent()``: this projection does not handle that kind
  (WIT ``unknown-event``; a strict projection faults, a lax one skips it);
- ``raise Rejected("why")``: the event is invalid for the state (WIT
  ``rejected(why)``; the projection faults);
- any other exception raised by ``handle`` (a ``KeyError`` on a missing
  field, ...) is also reported as ``rejected``, with the exception's type and
  message, rather than crashing the component.

State is serialised as canonical JSON (:func:`canonical_json`): keys sorted,
no whitespace, UTF-8, numbers as ECMAScript writes them, so the same events
give byte-identical snapshots in every language Hume supports. Event data,
snapshots and queries are read with :func:`loads` (integers beyond 64 bits
become doubles; numbers too large for a double are refused, as in every
other kit).

This module does not need the component bindings to be imported: tests run
it in plain CPython (see :class:`Harness`).
"""

from __future__ import annotations

import json
import math
import re

__all__ = [
    "Projection",
    "UnknownEvent",
    "Rejected",
    "Event",
    "Harness",
    "BatchFailure",
    "canonical_json",
    "loads",
    "plugin",
    "log",
]


class UnknownEvent(Exception):
    """The projection does not handle this kind of event (WIT ``unknown-event``)."""

    def __init__(self, message: str = "unknown event kind"):
        super().__init__(message)


class Rejected(Exception):
    """The event is invalid for the current state (WIT ``rejected(message)``)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Event:
    """One event as the projection sees it (a plain mirror of the WIT record)."""

    __slots__ = ("position", "stream", "revision", "kind", "data", "metadata", "timestamp")

    def __init__(self, position, stream, revision, kind, data, metadata=b"", timestamp=0):
        self.position = position
        self.stream = stream
        self.revision = revision
        self.kind = kind
        self.data = data
        self.metadata = metadata
        self.timestamp = timestamp

    def __repr__(self):
        return f"Event(position={self.position}, stream={self.stream!r}, kind={self.kind!r})"


class Projection:
    """Base class of a projection: override ``init_state`` and ``handle``.

    Class attributes: ``name`` (default: the class name, lower-cased),
    ``version`` (default ``"0.1.0"``), ``kinds`` (event kinds handled; empty
    means every kind).
    """

    name: str = ""
    version: str = "0.1.0"
    kinds: list = []

    def init_state(self, projection: str):
        """The initial state of projection `projection` (a JSON-able value)."""
        return {}

    def handle(self, state, kind: str, data, event: Event):
        """Fold one event into `state` and return the new state.

        `data` is the event's JSON payload, parsed. Raise :class:`UnknownEvent`
        or :class:`Rejected` (before changing anything) to refuse it.
        """
        raise UnknownEvent()

    def query(self, state, request):
        """Answer a read-side question (`request` is parsed JSON); return a
        JSON-able value. Raise ``ValueError("why")`` for a request this
        projection does not understand."""
        raise ValueError("this projection answers no queries")

    def on_caught_up(self, state, offset: int) -> None:
        """Called when the projection has applied every event up to the log head."""

    def restore_state(self, state):
        """Turn a state parsed from a snapshot back into the in-memory state
        (override when the in-memory form is not plain JSON)."""
        return state

    def dump_state(self, state):
        """Turn the in-memory state into a JSON-able value for a snapshot."""
        return state


class BatchFailure(Exception):
    """A batch stopped at event `index` because of `error` (an
    :class:`UnknownEvent` or :class:`Rejected`)."""

    def __init__(self, index: int, error: Exception):
        super().__init__(f"event {index} failed: {error}")
        self.index = index
        self.error = error


# ---------------------------------------------------------------- canonical JSON
#
# One number model in every Hume kit: an integer literal within the 64-bit
# range (-2**63 ..= 2**64 - 1) is that exact integer; every other number is
# the correctly rounded double; a number too large for a double is refused.
# Written back: integers as their digits, doubles as ECMAScript's
# Number.prototype.toString (shortest round-trip digits, `2.0` as `2`, `-0.0`
# as `0`, exponent form below 1e-6 and from 1e21: `1e-7`, `1e+21`).

_MIN_INT = -(2**63)
_MAX_INT = 2**64 - 1


def _format_float(x: float) -> str:
    """A double as ECMAScript's Number.prototype.toString writes it (RFC
    8785): the shortest digits that read back to `x`; positional from 1e-6
    up to 1e21 (``0.000001``, ``100000000000000000000``), exponent form
    outside (``1e-7``, ``1e+21``, ``1.5e+300``); no fraction for an
    integral value (``2``); ``0`` for -0.0; ``null`` for NaN and infinities."""
    if x != x or x in (math.inf, -math.inf):
        return "null"
    if x == 0:
        return "0"
    r = repr(x)  # shortest round-trip digits, closest to x
    neg = r[0] == "-"
    if neg:
        r = r[1:]
    mant, _, exp = r.partition("e")
    ip, _, fp = mant.partition(".")
    digits = (ip + fp).lstrip("0")
    # the value is 0.DIGITS x 10**n
    n = len(ip) + (int(exp) if exp else 0) - (len(ip + fp) - len(digits))
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * -n + digits
    else:
        e = n - 1
        out = (digits if k == 1 else digits[0] + "." + digits[1:]) + ("e+" if e >= 0 else "e-") + str(abs(e))
    return "-" + out if neg else out


def _format_int(v: int) -> str:
    # Beyond the 64-bit range an integer is a double, as every kit reads it.
    return int.__repr__(v) if _MIN_INT <= v <= _MAX_INT else _format_float(float(v))


_ENCODE_STR = json.encoder.encode_basestring  # escapes like serde_json (non-ASCII kept)


def _key(key) -> str:
    if type(key) is str:
        return key
    if isinstance(key, int) and not isinstance(key, bool):
        return int.__repr__(key)  # as Rust's serde_json writes integer keys
    raise TypeError(f"state keys must be strings, found {key!r}")


def _encode(value, out: list) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_ENCODE_STR(value))
    elif isinstance(value, int):
        out.append(_format_int(value))
    elif isinstance(value, float):
        out.append(_format_float(value))
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        pairs = value.items() if _str_keys(value) else [(_key(k), v) for k, v in value.items()]
        items = sorted(pairs, key=_first)
        sep = "{"
        for i, (key, item) in enumerate(items):
            if i + 1 < len(items) and items[i + 1][0] == key:
                raise ValueError(f"state key {key!r} appears twice (as a string and an integer)")
            out.append(sep)
            out.append(_ENCODE_STR(key))
            out.append(":")
            _encode(item, out)
            sep = ","
        out.append("}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        sep = "["
        for item in value:
            out.append(sep)
            _encode(item, out)
            sep = ","
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not JSON-serialisable: {value!r}")


def _first(pair):
    return pair[0]


def _str_keys(d: dict) -> bool:
    for k in d:
        if type(k) is not str:
            return False
    return True


def _plain(value) -> bool:
    """True when json.dumps already writes `value` canonically: no float, no
    integer beyond 64 bits, string keys only (plain types, no subclasses)."""
    t = type(value)
    if t is str or t is bool or value is None:
        return True
    if t is int:
        return _MIN_INT <= value <= _MAX_INT
    if t is dict:
        for k, v in value.items():
            if type(k) is not str or not _plain(v):
                return False
        return True
    if t is list or t is tuple:
        for v in value:
            if not _plain(v):
                return False
        return True
    return False


def canonical_json(value) -> bytes:
    """Canonical JSON bytes of `value`: object keys sorted (by code point),
    no whitespace, UTF-8 without escaping non-ASCII, numbers as described
    above. The same bytes Hume's Rust, JS and C kits write for the same
    state."""
    if _plain(value):
        # Fast path: the C encoder gives the same bytes.
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
        ).encode("utf-8")
    out: list = []
    _encode(value, out)
    return "".join(out).encode("utf-8")


def _int_or_double(text: str):
    value = int(text)
    if _MIN_INT <= value <= _MAX_INT:
        return value
    return _double(text)


def _double(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


# An integer of 19 digits or more (maybe beyond 64 bits), or an exponent of
# three digits (maybe beyond a double): read those numbers one by one.
_SLOW_NUMBERS = re.compile(rb"\d{19}|[eE][-+]?\d{3}")


def loads(data):
    """Parse JSON text (bytes or str) as every Hume kit does: integers beyond
    64 bits are doubles, numbers too large for a double and NaN/Infinity are
    refused (ValueError)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if _SLOW_NUMBERS.search(data):
        return json.loads(
            data, parse_int=_int_or_double, parse_float=_double, parse_constant=_no_constant
        )
    return json.loads(data, parse_constant=_no_constant)


# ---------------------------------------------------------------- the engine

def _parse(data: bytes):
    if not data:
        return None
    return loads(data)


class _Engine:
    """Runs a :class:`Projection` the way the host drives a component. Shared
    by the component export (:func:`plugin`) and the test :class:`Harness`."""

    def __init__(self, projection: Projection):
        self.p = projection
        self.name = projection.name or type(projection).__name__.lower()
        self.kinds = list(projection.kinds or [])
        self.state = None
        self.projection = ""

    def init_state(self, projection: str) -> None:
        self.projection = projection
        self.state = self.p.init_state(projection)

    def restore(self, projection: str, state: bytes) -> None:
        self.projection = projection
        try:
            parsed = loads(state)
        except ValueError as err:
            raise ValueError(f"snapshot is not valid JSON: {err}") from None
        self.state = self.p.restore_state(parsed)

    def handle_events(self, events) -> None:
        """Apply `events` in order; raise :class:`BatchFailure` at the first
        one that fails (the state keeps everything before it)."""
        p = self.p
        handle = p.handle
        state = self.state
        for index, event in enumerate(events):
            try:
                try:
                    data = _parse(event.data)
                except ValueError as err:
                    raise Rejected(
                        f"invalid data for event kind `{event.kind}`: not valid JSON: {err}"
                    ) from None
                state = handle(state, event.kind, data, event)
            except (UnknownEvent, Rejected) as err:
                self.state = state
                raise BatchFailure(index, err) from None
            except Exception as err:  # a bug or bad data: reject, don't crash
                self.state = state
                raise BatchFailure(index, Rejected(f"{type(err).__name__}: {err}")) from None
        self.state = state

    def snapshot(self) -> bytes:
        return canonical_json(self.p.dump_state(self.state))

    def on_caught_up(self, offset: int) -> None:
        self.p.on_caught_up(self.state, offset)

    def query(self, request: bytes) -> bytes:
        try:
            parsed = loads(request) if request else None
        except ValueError as err:
            raise ValueError(f"query is not valid JSON: {err}") from None
        return canonical_json(self.p.query(self.state, parsed))


class Harness:
    """Drive a projection in plain CPython, exactly as the component does.

    >>> h = Harness(Kv)
    >>> h.apply("add", {"key": "a", "value": 1})
    >>> h.snapshot()
    b'{"a":1}'
    """

    def __init__(self, projection_class, projection: str = "test"):
        self.engine = _Engine(projection_class())
        self.engine.init_state(projection)
        self.position = 0

    @property
    def state(self):
        """The current in-memory state."""
        return self.engine.state

    def apply(self, kind: str, data=None, stream: str = "test") -> None:
        """Apply one event; raises :class:`UnknownEvent` or :class:`Rejected`."""
        try:
            self.apply_batch([(kind, data, stream)])
        except BatchFailure as failure:
            raise failure.error from None

    def apply_batch(self, events) -> None:
        """Apply (kind, data[, stream]) tuples as one batch; raises
        :class:`BatchFailure` naming the index of the first failing event."""
        batch = []
        for item in events:
            kind, data = item[0], item[1]
            stream = item[2] if len(item) > 2 else "test"
            self.position += 1
            raw = b"" if data is None else canonical_json(data)
            batch.append(Event(self.position, stream, self.position, kind, raw))
        self.engine.handle_events(batch)

    def snapshot(self) -> bytes:
        """The canonical JSON snapshot bytes."""
        return self.engine.snapshot()

    def restore(self, snapshot: bytes) -> None:
        """Replace the state with a snapshot."""
        self.engine.restore(self.engine.projection, snapshot)

    def query(self, request) -> object:
        """Ask a query (a JSON-able value); returns the parsed answer."""
        return loads(self.engine.query(canonical_json(request)))


# ---------------------------------------------------------------- logging

class _Log:
    """``log.info("...")`` etc. write to the host's log (a no-op outside a component)."""

    def _write(self, level: str, message: str) -> None:
        try:
            from wit_world.imports import host  # type: ignore
        except ImportError:
            return
        host.log(getattr(host.Level, level.upper()), str(message))

    def trace(self, message: str) -> None:
        self._write("trace", message)

    def debug(self, message: str) -> None:
        self._write("debug", message)

    def info(self, message: str) -> None:
        self._write("info", message)

    def warn(self, message: str) -> None:
        self._write("warn", message)

    def error(self, message: str) -> None:
        self._write("error", message)


log = _Log()


# ---------------------------------------------------------------- the export

def plugin(projection_class):
    """Wrap a :class:`Projection` subclass into the class componentize-py
    exports for the ``projection`` world. Use as ``WitWorld = plugin(MyProj)``.

    Outside a component (plain CPython, e.g. in unit tests) the bindings do
    not exist: this returns ``None`` and the app module still imports."""
    try:
        from componentize_py_types import Err  # type: ignore
        from wit_world.imports import types  # type: ignore
    except ImportError:
        return None

    engine = _Engine(projection_class())
    unknown = types.EventError_UnknownEvent()

    class WitWorld:
        def describe(self):
            return types.Info(engine.name, engine.p.version, engine.kinds, "json")

        def init_state(self, projection):
            engine.init_state(projection)

        def restore(self, projection, state):
            try:
                engine.restore(projection, state)
            except Exception as err:
                raise Err(str(err)) from None

        def handle_events(self, events):
            try:
                engine.handle_events(events)
            except BatchFailure as failure:
                if isinstance(failure.error, UnknownEvent):
                    error = unknown
                else:
                    error = types.EventError_Rejected(failure.error.message)
                raise Err(types.Failure(failure.index, error)) from None

        def snapshot(self):
            return engine.snapshot()

        def on_caught_up(self, offset):
            engine.on_caught_up(offset)

        def query(self, request):
            try:
                return engine.query(request)
            except Exception as err:
                raise Err(str(err)) from None

    return WitWorld
