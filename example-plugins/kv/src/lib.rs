//! Example projection: kv.
