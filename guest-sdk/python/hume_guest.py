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
no whitespace, UTF-8, so the same events give byte-identical snapshots in
every language Hume supports.

This module does not need the component bindings to be imported: tests run
it in plain CPython (see :class:`Harness`).
"""

from __future__ import annotations

import json
import math

__all__ = [
    "Projection",
    "UnknownEvent",
    "Rejected",
    "Event",
    "Harness",
    "BatchFailure",
    "canonical_json",
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

def _format_float(x: float) -> str:
    """Format a float exactly as Rust's serde_json (1.0.154, zmij) does, so
    that states holding floats are byte-identical across languages: shortest
    round-trip digits; fixed notation when the decimal exponent is in
    -5..=15 (``0.00001``, ``1000000000000000.0``), else ``1.5e+300`` /
    ``1e-7``."""
    if not math.isfinite(x):
        return "null"  # serde_json writes non-finite floats as null
    r = repr(x)
    neg = r.startswith("-")
    if neg:
        r = r[1:]
    if "e" in r:
        mant, exp = r.split("e")
        exp = int(exp)
    else:
        mant, exp = r, 0
    if "." in mant:
        ip, fp = mant.split(".")
    else:
        ip, fp = mant, ""
    digits = (ip + fp).lstrip("0")
    # position of the decimal point relative to the start of `digits`
    point = len(ip) + exp - (len(ip + fp) - len((ip + fp).lstrip("0")))
    digits = digits.rstrip("0")
    if not digits:
        return "-0.0" if neg else "0.0"
    n = len(digits)
    k = point - n  # value = digits * 10^k
    kk = point
    if 0 <= k and kk <= 16:
        out = digits + "0" * k + ".0"
    elif 0 < kk <= 16:
        out = digits[:kk] + "." + digits[kk:]
    elif -5 < kk <= 0:
        out = "0." + "0" * (-kk) + digits
    else:
        e = kk - 1
        exp = ("e+" if e >= 0 else "e-") + str(abs(e))
        out = digits + exp if n == 1 else digits[0] + "." + digits[1:] + exp
    return "-" + out if neg else out


_ENCODE_STR = json.encoder.encode_basestring  # escapes like serde_json (non-ASCII kept)


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
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_format_float(value))
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        sep = "{"
        for key in sorted(value):
            if not isinstance(key, str):
                raise TypeError(f"state keys must be strings, found {key!r}")
            out.append(sep)
            out.append(_ENCODE_STR(key))
            out.append(":")
            _encode(value[key], out)
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


def _has_float(value) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_float(v) for v in value)
    return False


def canonical_json(value) -> bytes:
    """Canonical JSON bytes of `value`: object keys sorted (by code point),
    no whitespace, UTF-8 without escaping non-ASCII, floats as Rust's
    serde_json writes them. The same text Hume's Rust, JS and C kits produce."""
    if not _has_float(value):
        # Fast path: the C encoder gives the same bytes when no float is involved.
        try:
            return json.dumps(
                value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                allow_nan=False,
            ).encode("utf-8")
        except TypeError:
            pass  # non-string keys: let _encode name the problem
    out: list = []
    _encode(value, out)
    return "".join(out).encode("utf-8")


# ---------------------------------------------------------------- the engine

def _parse(data: bytes):
    if not data:
        return None
    return json.loads(data)


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
            parsed = json.loads(state)
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
                    raise Rejected(f"event data is not valid JSON: {err}") from None
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
            parsed = json.loads(request) if request else None
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
            raw = b"" if data is None else json.dumps(data).encode()
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
        return json.loads(self.engine.query(json.dumps(request).encode()))


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
