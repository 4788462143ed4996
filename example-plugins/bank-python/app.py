"""The `bank` projection in Python: account balances (same rules as the Rust
example `example-plugins/bank`).

- `opened` {"account"}: opens the account with balance 0 (opening an open
  account is rejected);
- `deposited` {"account", "amount"}: adds `amount`;
- `withdrawn` {"account", "amount"}: subtracts `amount`; no overdraft.

Money on an account that was never opened is rejected, naming the account.
Amounts are integers from 1 to 2^53 - 1, and so is every balance.

State: {"accounts": {"<id>": balance, ...}}.
Query: {"account": "<id>"} -> {"balance": n}.
"""

from hume_guest import Projection, Rejected, UnknownEvent, plugin

MAX_AMOUNT = (1 << 53) - 1


def _field(data, name, kind):
    if not isinstance(data, dict) or name not in data:
        raise Rejected(f"invalid data for event kind `{kind}`: missing field `{name}`")
    return data[name]


def _account(data, kind):
    account = _field(data, "account", kind)
    if not isinstance(account, str):
        raise Rejected(f"invalid data for event kind `{kind}`: `account` must be a string")
    return account


def _amount(data, kind, what, account):
    amount = _field(data, "amount", kind)
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise Rejected(f"invalid data for event kind `{kind}`: `amount` must be an integer")
    if not 1 <= amount <= MAX_AMOUNT:
        raise Rejected(
            f"{what} amount for account {account} must be an integer from 1 to {MAX_AMOUNT}, got {amount}"
        )
    return amount


class Bank(Projection):
    name = "bank"
    version = "0.1.0"
    kinds = ["opened", "deposited", "withdrawn"]

    def init_state(self, projection):
        return {"accounts": {}}

    def handle(self, state, kind, data, event):
        accounts = state["accounts"]
        if kind == "opened":
            account = _account(data, kind)
            if account in accounts:
                raise Rejected(f"account {account} is already open")
            accounts[account] = 0
        elif kind == "deposited":
            account = _account(data, kind)
            amount = _amount(data, kind, "deposit", account)
            if account not in accounts:
                raise Rejected(f"deposit on account {account}, which was never opened")
            new = accounts[account] + amount
            if new > MAX_AMOUNT:
                raise Rejected(
                    f"deposit of {amount} would take account {account} above the largest balance {MAX_AMOUNT}"
                )
            accounts[account] = new
        elif kind == "withdrawn":
            account = _account(data, kind)
            amount = _amount(data, kind, "withdrawal", account)
            if account not in accounts:
                raise Rejected(f"withdrawal on account {account}, which was never opened")
            balance = accounts[account]
            if amount > balance:
                raise Rejected(
                    f"insufficient funds: account {account} has {balance}, cannot withdraw {amount}"
                )
            accounts[account] = balance - amount
        else:
            raise UnknownEvent()
        return state

    def query(self, state, request):
        if not isinstance(request, dict) or set(request) != {"account"} or not isinstance(request["account"], str):
            raise ValueError('bad query: bank answers {"account": "<id>"}')
        account = request["account"]
        if account not in state["accounts"]:
            raise ValueError(f"account {account} was never opened")
        return {"balance": state["accounts"][account]}


WitWorld = plugin(Bank)
