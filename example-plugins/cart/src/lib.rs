//! Example projection `cart`: a shopping cart whose state is a struct with
//! floating-point money, to show what the SDK writes for such a state.
//!
//! Events:
//! - `item_added {"sku", "quantity", "price"}` puts `quantity` (an integer
//!   from 1) of `sku` at `price` (a finite number >= 0) in the cart; adding a
//!   sku again adds to its quantity at the new price;
//! - `item_removed {"sku"}` takes the sku out (a sku not in the cart is
//!   rejected);
//! - `checked_out {}` closes the cart; every later change is rejected.
//!
//! State (canonical JSON: the fields sorted, not in declaration order):
//! `{"checked_out_at":null,"items":{"<sku>":{"price":p,"quantity":q}},"status":"open","total":t}`,
//! where `total` is the sum of quantity x price over the items in sku order,
//! in doubles (`0.1` x 3 is `0.30000000000000004`, in every language), and
//! `checked_out_at` the timestamp of the checkout event.

use std::collections::BTreeMap;

use hume_guest::{reject, EventMeta, Projection, Reject};
use serde::{Deserialize, Serialize};

/// The state. Its fields are deliberately not in alphabetical order: the
/// snapshot sorts them anyway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cart {
    /// Open until checked out.
    pub status: Status,
    /// The cart's lines by sku.
    pub items: BTreeMap<String, Line>,
    /// Sum of quantity x price over the items, in sku order.
    pub total: f64,
    /// Timestamp (ms) of the checkout, once checked out.
    pub checked_out_at: Option<u64>,
}

/// Whether the cart still takes changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Items can be added and removed.
    #[default]
    Open,
    /// Closed: every change is rejected.
    CheckedOut,
}

/// One line of the cart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// How many.
    pub quantity: u32,
    /// Unit price.
    pub price: f64,
}

/// The events `cart` handles.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CartEvent {
    /// Some quantity of a sku was put in the cart.
    ItemAdded {
        /// The product.
        sku: String,
        /// How many (at least 1).
        quantity: u32,
        /// Unit price (finite, >= 0).
        price: f64,
    },
    /// A sku was taken out of the cart.
    ItemRemoved {
        /// The product.
        sku: String,
    },
    /// The cart was checked out.
    CheckedOut {},
}

impl Cart {
    fn recompute_total(&mut self) {
        self.total = self
            .items
            .values()
            .map(|line| f64::from(line.quantity) * line.price)
            .sum();
    }
}

impl Projection for Cart {
    type Event = CartEvent;

    fn handle(&mut self, event: CartEvent, meta: &EventMeta<'_>) -> Result<(), Reject> {
        if self.status == Status::CheckedOut {
            reject!("the cart is checked out: `{}` changes nothing", meta.kind);
        }
        match event {
            CartEvent::ItemAdded {
                sku,
                quantity,
                price,
            } => {
                if quantity == 0 {
                    reject!("quantity of {sku} must be at least 1");
                }
                if !(price.is_finite() && price >= 0.0) {
                    reject!("price of {sku} must be a number >= 0, got {price}");
                }
                let line = self.items.entry(sku).or_insert(Line { quantity: 0, price });
                line.quantity = line.quantity.saturating_add(quantity);
                line.price = price;
            }
            CartEvent::ItemRemoved { sku } => {
                if self.items.remove(&sku).is_none() {
                    reject!("{sku} is not in the cart");
                }
            }
            CartEvent::CheckedOut {} => {
                self.status = Status::CheckedOut;
                self.checked_out_at = Some(meta.timestamp);
            }
        }
        self.recompute_total();
        Ok(())
    }
}

hume_guest::export_projection!(Cart);

#[cfg(test)]
mod tests {
    use super::*;
    use hume_guest::testing::{event, raw_event, Given};
    use serde_json::json;

    #[test]
    fn snapshot_fields_are_sorted_and_floats_canonical() {
        let cart = Cart::given([
            event(
                "item_added",
                json!({"sku": "pear", "quantity": 2, "price": 1.5}),
            ),
            event(
                "item_added",
                json!({"sku": "apple", "quantity": 3, "price": 0.1}),
            ),
            event("item_removed", json!({"sku": "pear"})),
        ])
        .then_state(json!({
            "checked_out_at": null,
            "items": {"apple": {"price": 0.1, "quantity": 3}},
            "status": "open",
            "total": 0.30000000000000004
        }))
        .into_state();
        // Declared status, items, total, checked_out_at; written sorted.
        assert_eq!(
            String::from_utf8(hume_guest::snapshot(&cart)).unwrap(),
            r#"{"checked_out_at":null,"items":{"apple":{"price":0.1,"quantity":3}},"status":"open","total":0.30000000000000004}"#
        );
    }

    #[test]
    fn integral_totals_have_no_fraction() {
        let cart = Cart::given([
            event(
                "item_added",
                json!({"sku": "a", "quantity": 4, "price": 2.5}),
            ),
            event("checked_out", json!({})).timestamp(1_700_000_000_000),
        ])
        .into_state();
        assert_eq!(
            String::from_utf8(hume_guest::snapshot(&cart)).unwrap(),
            r#"{"checked_out_at":1700000000000,"items":{"a":{"price":2.5,"quantity":4}},"status":"checked_out","total":10}"#
        );
    }

    #[test]
    fn invalid_changes_are_rejected() {
        Cart::given([event(
            "item_added",
            json!({"sku": "a", "quantity": 0, "price": 1}),
        )])
        .then_rejected(0, "quantity of a must be at least 1");
        Cart::given([event(
            "item_added",
            json!({"sku": "a", "quantity": 1, "price": -1}),
        )])
        .then_rejected(0, "price of a must be a number >= 0, got -1");
        Cart::given([event("item_removed", json!({"sku": "a"}))])
            .then_rejected(0, "a is not in the cart");
        Cart::given([
            event("checked_out", json!({})),
            event("item_added", json!({"sku": "a", "quantity": 1, "price": 1})),
        ])
        .then_rejected(1, "the cart is checked out: `item_added` changes nothing");
        Cart::given([raw_event(
            "item_added",
            r#"{"sku": "a", "quantity": 1, "price": 1e400}"#,
        )])
        .then_rejected(
            0,
            "invalid data for event kind `item_added`: number out of range",
        );
    }
}
