"""Unit tests in plain CPython: `python3 -m unittest` (or `pytest`)."""

import unittest

from hume_guest import Harness, Rejected, UnknownEvent

from app import Counter


class CounterTest(unittest.TestCase):
    def test_counts_increments_and_resets(self):
        h = Harness(Counter)
        h.apply("incremented", {"by": 2})
        h.apply("incremented", {"by": 3})
        self.assertEqual(h.snapshot(), b'{"count":5}')
        h.apply("reset", {})
        self.assertEqual(h.state, {"count": 0})

    def test_refuses_what_it_does_not_know(self):
        h = Harness(Counter)
        with self.assertRaises(Rejected):
            h.apply("incremented", {"by": 0})
        with self.assertRaises(UnknownEvent):
            h.apply("decremented", {"by": 1})
        self.assertEqual(h.snapshot(), b'{"count":0}')


if __name__ == "__main__":
    unittest.main()
