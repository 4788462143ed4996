//! The target assignment of projections to nodes, computed alike by every
//! node from the same inputs: rendezvous (highest random weight) ranking,
//! with capacities that keep every node within one projection of the
//! others.
//!
//! Each node may take `floor(P / N)` projections, and the first `P mod N`
//! nodes (by id) one more, so the capacities add up to `P`. Projections
//! are placed in name order, each on its highest-ranked node with room.
//! When a node joins or leaves, most projections keep their node: only
//! those whose ranking now favours the newcomer, or that lost their node,
//! and a few displaced by the capacities, move.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// The weight of `node` for `projection`.
fn weight(node: &str, projection: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(node.as_bytes());
    h.update([0]);
    h.update(projection.as_bytes());
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// The node each projection should run on; empty when there is no node.
/// `nodes` and `projections` may come in any order, with duplicates.
pub fn assign(projections: &[String], nodes: &[String]) -> BTreeMap<String, String> {
    let mut nodes: Vec<&String> = nodes.iter().collect();
    nodes.sort();
    nodes.dedup();
    let mut projections: Vec<&String> = projections.iter().collect();
    projections.sort();
    projections.dedup();
    let mut out = BTreeMap::new();
    if nodes.is_empty() {
        return out;
    }
    let (base, extra) = (
        projections.len() / nodes.len(),
        projections.len() % nodes.len(),
    );
    let mut room: Vec<usize> = (0..nodes.len())
        .map(|i| base + usize::from(i < extra))
        .collect();
    for p in projections {
        let best = (0..nodes.len())
            .filter(|&i| room[i] > 0)
            .max_by_key(|&i| (weight(nodes[i], p), std::cmp::Reverse(i)))
            .expect("the capacities add up to the projections");
        room[best] -= 1;
        out.insert(p.clone(), nodes[best].clone());
    }
    out
}

/// How many projections each node gets.
pub fn counts(assignment: &BTreeMap<String, String>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for node in assignment.values() {
        *out.entry(node.clone()).or_insert(0) += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    #[test]
    fn spreads_within_one() {
        for (p, n) in [(10, 3), (30, 3), (12, 4), (2, 3), (0, 2), (31, 7)] {
            let a = assign(&names("p", p), &names("node-", n));
            assert_eq!(a.len(), p);
            let c = counts(&a);
            let (lo, hi) = (
                c.values().min().copied().unwrap_or(0),
                c.values().max().copied().unwrap_or(0),
            );
            let lo = if c.len() < n { 0 } else { lo };
            assert!(hi - lo <= 1, "{p} over {n}: {c:?}");
        }
    }

    #[test]
    fn the_same_from_any_order() {
        let mut ps = names("p", 20);
        let mut ns = names("n", 3);
        let a = assign(&ps, &ns);
        ps.reverse();
        ns.reverse();
        ns.push("n1".into());
        assert_eq!(assign(&ps, &ns), a);
    }

    #[test]
    fn few_moves_on_join_and_leave() {
        let ps = names("projection-", 30);
        let three = assign(&ps, &names("n", 3));
        let four = assign(&ps, &names("n", 4));
        let moved = ps.iter().filter(|p| three[*p] != four[*p]).count();
        // Ideal: a quarter (the newcomer's share); capacities add a few.
        assert!(moved <= 30 / 4 + 5, "{moved} of 30 moved on a join");
        let two = assign(&ps, &names("n", 2));
        let moved = ps.iter().filter(|p| three[*p] != two[*p]).count();
        assert!(moved <= 30 / 3 + 5, "{moved} of 30 moved on a leave");
    }

    #[test]
    fn no_nodes_no_assignment() {
        assert!(assign(&names("p", 3), &[]).is_empty());
    }
}
