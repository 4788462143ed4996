//! Example projection `bank`: account balances.
//!
//! Events (`account` is a string id, `amount` a JSON integer):
//! - `opened {"account"}` opens the account with balance 0; opening an
//!   account that is already open is rejected.
//! - `deposited {"account", "amount"}` adds `amount`.
//! - `withdrawn {"account", "amount"}` subtracts `amount`. **No overdraft**:
//!   a withdrawal larger than the balance is rejected and changes nothing.
//!
//! A deposit or withdrawal on an account that was never opened is rejected
//! with a message naming the account. Amounts must be integers from 1 to
//! 2^53 - 1 (9007199254740991, so every language's JSON agrees on them) and
//! a balance may not exceed that either. Other kinds are unknown.
//!
//! State: `{"accounts": {"<id>": balance, ...}}`, sorted by id.
//! Query: `{"account": "<id>"}` answers `{"balance": n}`, or an error if the
//! account was never opened.

use std::collections::BTreeMap;

use hume_guest::{reject, EventMeta, Projection, Reject};
use serde::{Deserialize, Serialize};

/// The largest amount or balance: 2^53 - 1, exact in every JSON library.
pub const MAX_AMOUNT: i64 = (1 << 53) - 1;

/// The state: the balance of every open account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bank {
    /// Balance per account id.
    pub accounts: BTreeMap<String, i64>,
}

/// The events `bank` handles.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BankEvent {
    /// An account was opened.
    Opened {
        /// Account id.
        account: String,
    },
    /// Money was paid into an account.
    Deposited {
        /// Account id.
        account: String,
        /// Positive integer amount.
        amount: i64,
    },
    /// Money was taken out of an account.
    Withdrawn {
        /// Account id.
        account: String,
        /// Positive integer amount.
        amount: i64,
    },
}

fn check_amount(kind: &str, account: &str, amount: i64) -> Result<(), Reject> {
    if !(1..=MAX_AMOUNT).contains(&amount) {
        reject!("{kind} amount for account {account} must be an integer from 1 to {MAX_AMOUNT}, got {amount}");
    }
    Ok(())
}

impl Bank {
    fn balance_mut(&mut self, kind: &str, account: &str) -> Result<&mut i64, Reject> {
        match self.accounts.get_mut(account) {
            Some(balance) => Ok(balance),
            None => reject!("{kind} on account {account}, which was never opened"),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BalanceQuery {
    account: String,
}

impl Projection for Bank {
    type Event = BankEvent;

    fn handle(&mut self, event: BankEvent, _meta: &EventMeta<'_>) -> Result<(), Reject> {
        match event {
            BankEvent::Opened { account } => {
                if self.accounts.contains_key(&account) {
                    reject!("account {account} is already open");
                }
                self.accounts.insert(account, 0);
            }
            BankEvent::Deposited { account, amount } => {
                check_amount("deposit", &account, amount)?;
                let balance = self.balance_mut("deposit", &account)?;
                let new = *balance + amount; // both <= 2^53 - 1: cannot overflow i64
                if new > MAX_AMOUNT {
                    reject!("deposit of {amount} would take account {account} above the largest balance {MAX_AMOUNT}");
                }
                *balance = new;
            }
            BankEvent::Withdrawn { account, amount } => {
                check_amount("withdrawal", &account, amount)?;
                let balance = self.balance_mut("withdrawal", &account)?;
                if amount > *balance {
                    reject!("insufficient funds: account {account} has {balance}, cannot withdraw {amount}");
                }
                *balance -= amount;
            }
        }
        Ok(())
    }

    fn query(&self, request: &[u8]) -> Result<Vec<u8>, String> {
        hume_guest::query_json(request, |q: BalanceQuery| {
            match self.accounts.get(&q.account) {
                Some(balance) => Ok(serde_json::json!({ "balance": balance })),
                None => Err(format!("account {} was never opened", q.account)),
            }
        })
    }
}

hume_guest::export_projection!(Bank);

#[cfg(test)]
mod tests {
    use super::*;
    use hume_guest::testing::{event, Given};
    use serde_json::json;

    #[test]
    fn deposits_and_withdrawals_move_the_balance() {
        Bank::given([
            event("opened", json!({"account": "42"})),
            event("opened", json!({"account": "7"})),
            event("deposited", json!({"account": "42", "amount": 100})),
            event("withdrawn", json!({"account": "42", "amount": 30})),
            event("deposited", json!({"account": "7", "amount": 5})),
        ])
        .then_state(json!({"accounts": {"42": 70, "7": 5}}))
        .then_query(json!({"account": "42"}), json!({"balance": 70}))
        .then_query_error(json!({"account": "1"}), "account 1 was never opened")
        .then_query_error(json!({"acount": "42"}), "bad query");
    }

    #[test]
    fn money_on_an_unopened_account_is_rejected_naming_it() {
        Bank::given([
            event("opened", json!({"account": "42"})),
            event("deposited", json!({"account": "42", "amount": 10})),
            event("deposited", json!({"account": "99", "amount": 10})),
        ])
        .then_rejected(2, "deposit on account 99, which was never opened")
        .and_state(json!({"accounts": {"42": 10}}));

        Bank::given([event("withdrawn", json!({"account": "x-1", "amount": 1}))])
            .then_rejected(0, "withdrawal on account x-1, which was never opened")
            .and_state(json!({"accounts": {}}));
    }

    #[test]
    fn no_overdraft() {
        Bank::given([
            event("opened", json!({"account": "1"})),
            event("deposited", json!({"account": "1", "amount": 10})),
        ])
        .when([
            event("withdrawn", json!({"account": "1", "amount": 10})),
            event("withdrawn", json!({"account": "1", "amount": 1})),
        ])
        .then_rejected(1, "insufficient funds: account 1 has 0, cannot withdraw 1")
        .and_state(json!({"accounts": {"1": 0}}));
    }

    #[test]
    fn amounts_must_be_positive_safe_integers() {
        let opened = || event("opened", json!({"account": "1"}));
        Bank::given([
            opened(),
            event("deposited", json!({"account": "1", "amount": 0})),
        ])
        .then_rejected(
            1,
            "deposit amount for account 1 must be an integer from 1 to 9007199254740991, got 0",
        );
        Bank::given([
            opened(),
            event("withdrawn", json!({"account": "1", "amount": -5})),
        ])
        .then_rejected(1, "got -5");
        Bank::given([
            opened(),
            event("deposited", json!({"account": "1", "amount": 1.5})),
        ])
        .then_rejected(1, "invalid type: floating point `1.5`");
        Bank::given([
            opened(),
            event("deposited", json!({"account": "1", "amount": "10"})),
        ])
        .then_rejected(1, "invalid type: string \"10\"");
        Bank::given([opened(), event("deposited", json!({"account": "1"}))])
            .then_rejected(1, "missing field `amount`");
        Bank::given([
            opened(),
            event("deposited", json!({"account": "1", "amount": MAX_AMOUNT})),
            event("deposited", json!({"account": "1", "amount": 1})),
        ])
        .then_rejected(2, "above the largest balance")
        .and_state(json!({"accounts": {"1": MAX_AMOUNT}}));
    }

    #[test]
    fn opening_twice_is_rejected() {
        Bank::given([
            event("opened", json!({"account": "1"})),
            event("deposited", json!({"account": "1", "amount": 3})),
            event("opened", json!({"account": "1"})),
        ])
        .then_rejected(2, "account 1 is already open")
        .and_state(json!({"accounts": {"1": 3}}));
    }

    #[test]
    fn other_kinds_are_unknown() {
        Bank::given([event("closed", json!({"account": "1"}))]).then_unknown(0);
        assert_eq!(Bank::kinds(), ["opened", "deposited", "withdrawn"]);
    }
}
