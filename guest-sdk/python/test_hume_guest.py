"""Unit tests of the Python kit itself: canonical JSON and the number model
shared with the Rust, JS and C kits. Run: python3 -m unittest -v (here)."""

import json
import os
import unittest

from hume_guest import (
    BatchFailure,
    Event,
    Harness,
    Projection,
    Rejected,
    UnknownEvent,
    _encode,
    canonical_json,
    loads,
)

NUMBERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "numbers.json")


class Store(Projection):
    """Keeps every event's data under its kind: a state of any shape."""

    name = "store"
    kinds = []

    def init_state(self, projection):
        return {}

    def handle(self, state, kind, data, event):
        if kind == "boom":
            raise UnknownEvent()
        state[kind] = data
        return state


class Numbers(unittest.TestCase):
    def test_shared_vectors(self):
        """guest-sdk/testdata/numbers.json: read as event data is read,
        written canonically; the Rust, JS and C kits check the same file."""
        with open(NUMBERS, encoding="utf-8") as f:
            pairs = json.load(f)
        self.assertGreater(len(pairs), 500)
        failures = []
        for text, expected in pairs:
            try:
                got = canonical_json(loads(text)).decode()
            except ValueError:
                got = None
            if got != expected:
                failures.append(f"{text}: expected {expected!r}, got {got!r}")
        self.assertEqual(failures, [])

    def test_python_values(self):
        cases = [
            (0.0, "0"), (-0.0, "0"), (2.0, "2"), (0.1 + 0.2, "0.30000000000000004"),
            (1e20, "100000000000000000000"), (1e21, "1e+21"), (1e-7, "1e-7"),
            (0.000001, "0.000001"), (12345678901234567.0, "12345678901234568"),
            (5e-324, "5e-324"), (float("nan"), "null"), (float("inf"), "null"),
            (2**64 - 1, "18446744073709551615"), (-(2**63), "-9223372036854775808"),
            (2**64, "18446744073709552000"), (10**30, "1e+30"),
        ]
        for value, expected in cases:
            self.assertEqual(canonical_json(value).decode(), expected, repr(value))

    def test_refused_numbers(self):
        for text in ["1e400", "-1e400", "1" + "0" * 400, "NaN", "Infinity", "-Infinity", "[1, NaN]"]:
            with self.assertRaises(ValueError, msg=text):
                loads(text)

    def test_event_data_that_is_not_json_is_rejected_naming_the_kind(self):
        h = Harness(Store)
        for raw in [b'{"x": 1e400}', b'{"x": NaN}', b'{"x":']:
            with self.assertRaises(BatchFailure) as caught:
                h.engine.handle_events([Event(1, "s", 1, "add", raw)])
            self.assertIsInstance(caught.exception.error, Rejected)
            self.assertTrue(
                caught.exception.error.message.startswith("invalid data for event kind `add`: "),
                caught.exception.error.message,
            )


class Canonical(unittest.TestCase):
    def test_keys_sorted_at_every_depth_whatever_the_insertion_order(self):
        h = Harness(Store)
        h.apply("order", {"status": "open", "items": {"b": {"quantity": 2, "price": 0.1}, "a": {}}, "total": 2.0})
        h.apply("a", [{"z": 1, "y": {"d": None, "c": True}}])
        self.assertEqual(
            h.snapshot(),
            b'{"a":[{"y":{"c":true,"d":null},"z":1}],'
            b'"order":{"items":{"a":{},"b":{"price":0.1,"quantity":2}},"status":"open","total":2}}',
        )

    def test_code_point_order_escapes_and_non_ascii(self):
        value = {"é": 1, "z": 2, "\ue000": 3, "😀": 4, "A": 5, "": 6, 'a"b': 7, "\n": 8}
        self.assertEqual(
            canonical_json(value).decode(),
            '{"":6,"\\n":8,"A":5,"a\\"b":7,"z":2,"é":1,"\ue000":3,"😀":4}',
        )

    def test_fast_and_slow_paths_agree(self):
        plain = {"b": [1, "x", None, True, {"d": -(2**63), "c": 2**64 - 1, "é": "\u0001"}], "a": ()}
        slow: list = []
        _encode(plain, slow)  # what the float path writes
        self.assertEqual(canonical_json(plain), "".join(slow).encode())
        self.assertEqual(
            canonical_json(plain),
            '{"a":[],"b":[1,"x",null,true,{"c":18446744073709551615,"d":-9223372036854775808,"é":"\\u0001"}]}'.encode(),
        )

    def test_integer_keys_become_strings_sorted_as_strings(self):
        self.assertEqual(canonical_json({10: "a", 9: "b", "x": 1.0}), b'{"10":"a","9":"b","x":1}')
        self.assertEqual(canonical_json({10: "a", 9: "b"}), b'{"10":"a","9":"b"}')
        with self.assertRaises(TypeError):
            canonical_json({(1, 2): "tuple key"})
        with self.assertRaises(ValueError):
            canonical_json({1: "a", "1": "b"})

    def test_snapshot_restores_to_the_same_bytes(self):
        h = Harness(Store)
        h.apply("n", {"v": [1e20, 1e21, 2.0, -0.0, 12345678901234567, 5e-324, 2**64]})
        first = h.snapshot()
        h.restore(first)
        self.assertEqual(h.snapshot(), first)
        self.assertEqual(
            first, b'{"n":{"v":[100000000000000000000,1e+21,2,0,12345678901234567,5e-324,18446744073709552000]}}'
        )


if __name__ == "__main__":
    unittest.main()
