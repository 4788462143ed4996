"""Unit tests of the kv projection in plain CPython (no component needed):
`python -m unittest` or `pytest` in this folder."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "guest-sdk", "python"))

from hume_guest import BatchFailure, Harness, Rejected, UnknownEvent  # noqa: E402

from app import Kv  # noqa: E402


class KvTest(unittest.TestCase):
    def test_add_sets_and_overwrites(self):
        h = Harness(Kv)
        h.apply("add", {"key": "b", "value": {"nested": [1, 2.5, None]}})
        h.apply("add", {"key": "a", "value": 1})
        h.apply("add", {"key": "a", "value": "one"})
        self.assertEqual(h.snapshot(), b'{"a":"one","b":{"nested":[1,2.5,null]}}')

    def test_remove_deletes_and_tolerates_missing_keys(self):
        h = Harness(Kv)
        h.apply("add", {"key": "a", "value": 1})
        h.apply("remove", {"key": "a"})
        h.apply("remove", {"key": "never"})
        self.assertEqual(h.snapshot(), b"{}")

    def test_other_kinds_are_unknown_and_change_nothing(self):
        h = Harness(Kv)
        with self.assertRaises(BatchFailure) as caught:
            h.apply_batch([("add", {"key": "a", "value": 1}), ("rename", {"key": "a"})])
        self.assertEqual(caught.exception.index, 1)
        self.assertIsInstance(caught.exception.error, UnknownEvent)
        self.assertEqual(h.snapshot(), b'{"a":1}')

    def test_bad_data_is_rejected(self):
        h = Harness(Kv)
        for kind, data in (("add", {"key": "a"}), ("remove", {"key": 7}), ("add", None)):
            with self.assertRaises(Rejected):
                h.apply(kind, data)
        self.assertEqual(h.snapshot(), b"{}")

    def test_query_by_key(self):
        h = Harness(Kv)
        h.apply("add", {"key": "a", "value": [1]})
        self.assertEqual(h.query({"key": "a"}), {"value": [1]})
        self.assertEqual(h.query({"key": "b"}), {"value": None})


if __name__ == "__main__":
    unittest.main()
