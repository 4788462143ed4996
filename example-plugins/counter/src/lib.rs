//! Example projection: counter.
