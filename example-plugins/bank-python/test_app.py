"""Unit tests of the bank projection in plain CPython (no component needed):
`python -m unittest` or `pytest` in this folder."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "guest-sdk", "python"))

from hume_guest import BatchFailure, Harness, Rejected, UnknownEvent  # noqa: E402

from app import MAX_AMOUNT, Bank  # noqa: E402


class BankTest(unittest.TestCase):
    def test_deposits_and_withdrawals_move_the_balance(self):
        h = Harness(Bank)
        h.apply("opened", {"account": "42"})
        h.apply("opened", {"account": "7"})
        h.apply("deposited", {"account": "42", "amount": 100})
        h.apply("withdrawn", {"account": "42", "amount": 30})
        h.apply("deposited", {"account": "7", "amount": 5})
        self.assertEqual(h.snapshot(), b'{"accounts":{"42":70,"7":5}}')
        self.assertEqual(h.query({"account": "42"}), {"balance": 70})

    def test_unopened_account_is_rejected_naming_it(self):
        h = Harness(Bank)
        h.apply("opened", {"account": "42"})
        with self.assertRaises(BatchFailure) as caught:
            h.apply_batch([("deposited", {"account": "42", "amount": 10}),
                           ("deposited", {"account": "99", "amount": 10})])
        self.assertEqual(caught.exception.index, 1)
        self.assertIn("account 99", str(caught.exception.error))
        self.assertEqual(h.snapshot(), b'{"accounts":{"42":10}}')

    def test_no_overdraft(self):
        h = Harness(Bank)
        h.apply("opened", {"account": "1"})
        h.apply("deposited", {"account": "1", "amount": 10})
        h.apply("withdrawn", {"account": "1", "amount": 10})
        with self.assertRaisesRegex(Rejected, "insufficient funds: account 1 has 0, cannot withdraw 1"):
            h.apply("withdrawn", {"account": "1", "amount": 1})

    def test_amounts_must_be_positive_safe_integers(self):
        h = Harness(Bank)
        h.apply("opened", {"account": "1"})
        for bad in (0, -5, 1.5, "10", True, MAX_AMOUNT + 1):
            with self.assertRaises(Rejected):
                h.apply("deposited", {"account": "1", "amount": bad})
        h.apply("deposited", {"account": "1", "amount": MAX_AMOUNT})
        with self.assertRaisesRegex(Rejected, "above the largest balance"):
            h.apply("deposited", {"account": "1", "amount": 1})

    def test_opening_twice_is_rejected(self):
        h = Harness(Bank)
        h.apply("opened", {"account": "1"})
        with self.assertRaisesRegex(Rejected, "account 1 is already open"):
            h.apply("opened", {"account": "1"})

    def test_other_kinds_are_unknown(self):
        with self.assertRaises(UnknownEvent):
            Harness(Bank).apply("closed", {"account": "1"})

    def test_snapshot_restores(self):
        h = Harness(Bank)
        h.apply("opened", {"account": "1"})
        h.apply("deposited", {"account": "1", "amount": 3})
        g = Harness(Bank)
        g.restore(h.snapshot())
        g.apply("withdrawn", {"account": "1", "amount": 2})
        self.assertEqual(g.snapshot(), b'{"accounts":{"1":1}}')


if __name__ == "__main__":
    unittest.main()
