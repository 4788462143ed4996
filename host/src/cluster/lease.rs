//! The leases this node holds, as it knows them: owner record, the revision
//! to compare with on the next renewal, and when the last successful
//! renewal was *sent*. The store expires a lease a TTL after it received
//! the last write, so a lease counts as held here only until a TTL after
//! that send (never longer than the store keeps it).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Lease;

/// One held lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Owner (this node) and epoch.
    pub lease: Lease,
    /// The store's revision of the lease as this node last wrote it.
    pub revision: u64,
    /// When the write that produced `revision` was sent.
    pub sent: Instant,
}

impl Held {
    /// Still held at `now` by the local clock.
    pub fn valid(&self, now: Instant, ttl: Duration) -> bool {
        now < self.sent + ttl
    }
}

/// The leases this node holds, shared by the cluster task and the fenced
/// snapshot store.
#[derive(Debug)]
pub struct Ownership {
    node: String,
    ttl: Duration,
    held: Mutex<BTreeMap<String, Held>>,
}

impl Ownership {
    /// No lease held yet.
    pub fn new(node: impl Into<String>, ttl: Duration) -> Ownership {
        Ownership {
            node: node.into(),
            ttl,
            held: Mutex::new(BTreeMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The lease TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The lease of `name`, if held and not expired at `now`.
    pub fn get(&self, name: &str, now: Instant) -> Option<Held> {
        self.map()
            .get(name)
            .filter(|h| h.valid(now, self.ttl))
            .cloned()
    }

    /// Every lease recorded (expired ones included).
    pub fn all(&self) -> Vec<(String, Held)> {
        self.map()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// How many leases are recorded.
    pub fn count(&self) -> usize {
        self.map().len()
    }

    /// Record a lease just taken.
    pub fn insert(&self, name: &str, held: Held) {
        self.map().insert(name.to_string(), held);
    }

    /// A renewal of `name` from `from` succeeded: now at `revision`, sent
    /// at `sent`. Ignored when the record moved meanwhile (another renewal
    /// won, or the lease was dropped).
    pub fn renewed(&self, name: &str, from: u64, revision: u64, sent: Instant) {
        if let Some(h) = self.map().get_mut(name) {
            if h.revision == from {
                h.revision = revision;
                h.sent = sent;
            }
        }
    }

    /// Forget `name` (lost or released); what was recorded.
    pub fn remove(&self, name: &str) -> Option<Held> {
        self.map().remove(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(revision: u64, sent: Instant) -> Held {
        Held {
            lease: Lease {
                node: "a".into(),
                epoch: 1,
            },
            revision,
            sent,
        }
    }

    #[test]
    fn a_lease_expires_a_ttl_after_its_last_renewal_was_sent() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(2);
        let o = Ownership::new("a", ttl);
        o.insert("p", held(5, t0));
        assert!(o.get("p", t0 + Duration::from_millis(1999)).is_some());
        assert!(o.get("p", t0 + ttl).is_none());
        o.renewed("p", 5, 9, t0 + Duration::from_secs(1));
        let h = o.get("p", t0 + Duration::from_millis(2500)).unwrap();
        assert_eq!(h.revision, 9);
        assert_eq!(
            o.all().len(),
            1,
            "expired leases stay recorded until dropped"
        );
    }

    #[test]
    fn a_stale_renewal_is_ignored() {
        let t0 = Instant::now();
        let o = Ownership::new("a", Duration::from_secs(2));
        o.insert("p", held(5, t0));
        o.renewed("p", 5, 6, t0);
        o.renewed("p", 5, 7, t0);
        assert_eq!(o.get("p", t0).unwrap().revision, 6);
        o.remove("p");
        o.renewed("p", 6, 8, t0);
        assert!(o.get("p", t0).is_none());
    }
}
