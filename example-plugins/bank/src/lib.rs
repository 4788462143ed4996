//! Example projection: bank.
