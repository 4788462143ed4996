//! The bound on live plugin instances (`hume serve --max-live-instances`).
//!
//! Every live instance holds memory and about
//! [`MAPPINGS_PER_INSTANCE`](crate::plugin::MAPPINGS_PER_INSTANCE) memory
//! mappings, so a server with many projections keeps only the recently used
//! ones live; the others hibernate (their state held as snapshot bytes, see
//! `actor/hibernate.rs`) and are brought back on their next event, read or
//! query.
//!
//! An actor holds a [`Slot`] while it has an instance. Taking a slot when all
//! are in use asks the least recently used holder not asked yet to
//! hibernate, and waits (first come, first served) for a slot to come free:
//! one request, one holder asked, so thousands of waiting projections (a
//! restart) cost nothing while they wait. The choice is the pure [`Lru`];
//! [`InstanceBudget`] only drives it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::actor::Command;

/// Default `--max-live-instances`: at 7 mappings each, 4,096 live instances
/// use under half of Linux's default `vm.max_map_count` (65,530), which
/// leaves room for the rest of the process and for short-lived instances
/// (time travel, validation).
pub const DEFAULT_MAX_LIVE_INSTANCES: usize = 4096;

/// Largest `--max-live-instances` accepted: beyond it the bound means
/// nothing on any machine (7 million mappings).
pub const MAX_MAX_LIVE_INSTANCES: usize = 1_000_000;

/// How long a slot request waits before asking once more. An asked holder
/// always gives its slot up (at once when idle, after a batch when catching
/// up, once its waiting reads are answered), so this is only a safety net;
/// asking more often would make every waiter poll (a restart of 100,000
/// projections has nearly all of them waiting).
const ASK_AGAIN_AFTER: Duration = Duration::from_secs(5);

/// Least-recently-used order over slot holders, by id. Pure: no clock (a
/// counter orders uses) and no I/O.
#[derive(Debug, Default)]
pub(crate) struct Lru {
    tick: u64,
    by_tick: BTreeMap<u64, u64>,
    by_id: HashMap<u64, u64>,
}

impl Lru {
    /// Record a use of `id` (inserting it when new).
    pub fn touch(&mut self, id: u64) {
        self.tick += 1;
        if let Some(old) = self.by_id.insert(id, self.tick) {
            self.by_tick.remove(&old);
        }
        self.by_tick.insert(self.tick, id);
    }

    /// Forget `id`.
    pub fn remove(&mut self, id: u64) {
        if let Some(t) = self.by_id.remove(&id) {
            self.by_tick.remove(&t);
        }
    }

    /// The least recently used id other than `except` whose last use came
    /// after tick `after` (0: any). Asking in rounds moves `after` up to the
    /// tick of the last id asked, so each round asks the next one.
    pub fn oldest_after(&self, except: u64, after: u64) -> Option<(u64, u64)> {
        self.by_tick
            .range(after.saturating_add(1)..)
            .map(|(tick, id)| (*tick, *id))
            .find(|(_, id)| *id != except)
    }

    /// Number of ids held.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }
}

struct Holders {
    lru: Lru,
    mailboxes: HashMap<u64, mpsc::WeakSender<Box<Command>>>,
    next_id: u64,
    /// Holders last used at or before this tick were asked to hibernate
    /// already (a holder used since has a newer tick and may be asked
    /// again): concurrent requests ask different holders.
    asked_upto: u64,
    /// Requests waiting for a slot.
    waiting: usize,
}

/// Shared by every actor of a server: the live-instance bound.
pub(crate) struct InstanceBudget {
    max: usize,
    permits: Arc<Semaphore>,
    holders: Mutex<Holders>,
}

/// The right to hold one live instance; given back when dropped.
pub(crate) struct Slot {
    id: u64,
    budget: Arc<InstanceBudget>,
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    /// Record a use (the instance folded, or answered a read).
    pub fn touch(&self) {
        self.budget.holders().lru.touch(self.id);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut h = self.budget.holders();
        h.lru.remove(self.id);
        h.mailboxes.remove(&self.id);
        metrics::gauge!("hume_live_instances").set(h.lru.len() as f64);
    }
}

impl InstanceBudget {
    /// A budget of `max` live instances (at least one).
    pub fn new(max: usize) -> Arc<InstanceBudget> {
        let max = max.max(1);
        Arc::new(InstanceBudget {
            max,
            permits: Arc::new(Semaphore::new(max)),
            holders: Mutex::new(Holders {
                lru: Lru::default(),
                mailboxes: HashMap::new(),
                next_id: 0,
                asked_upto: 0,
                waiting: 0,
            }),
        })
    }

    /// The bound.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Instances live now.
    pub fn live(&self) -> usize {
        self.holders().lru.len()
    }

    fn holders(&self) -> std::sync::MutexGuard<'_, Holders> {
        self.holders.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot if one is free now (nobody is asked to give one up).
    pub fn try_acquire(self: &Arc<Self>, mailbox: mpsc::WeakSender<Box<Command>>) -> Option<Slot> {
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        let id = {
            let mut h = self.holders();
            h.next_id += 1;
            h.next_id
        };
        Some(self.register(id, mailbox, permit))
    }

    /// Take a slot for the actor behind `mailbox`, asking the least recently
    /// used holders to hibernate while none is free.
    pub async fn acquire(self: &Arc<Self>, mailbox: mpsc::WeakSender<Box<Command>>) -> Slot {
        let id = {
            let mut h = self.holders();
            h.next_id += 1;
            h.next_id
        };
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return self.register(id, mailbox, permit);
        }
        // Counted while waiting (also when the wait is dropped half way).
        struct Waiting<'a>(&'a InstanceBudget);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.holders().waiting -= 1;
            }
        }
        self.holders().waiting += 1;
        let waiting = Waiting(self);
        let mut again = false;
        let permit = loop {
            self.ask_next(id, again);
            again = true;
            // Wait for a slot to come free (the holder asked gives one up).
            if let Ok(Ok(permit)) =
                tokio::time::timeout(ASK_AGAIN_AFTER, self.permits.clone().acquire_owned()).await
            {
                break permit;
            }
        };
        drop(waiting);
        self.register(id, mailbox, permit)
    }

    fn register(
        self: &Arc<Self>,
        id: u64,
        mailbox: mpsc::WeakSender<Box<Command>>,
        permit: OwnedSemaphorePermit,
    ) -> Slot {
        let mut h = self.holders();
        h.lru.touch(id);
        // Others wait: this one too gives its slot up once it has done a
        // batch or has nothing to do (so a queue of thousands moves on
        // without each waiter having to find a holder to ask).
        if h.waiting > 0 {
            if let Some(tx) = mailbox.upgrade() {
                let _ = tx.try_send(Box::new(Command::Hibernate));
            }
        }
        h.mailboxes.insert(id, mailbox);
        metrics::gauge!("hume_live_instances").set(h.lru.len() as f64);
        Slot {
            id,
            budget: self.clone(),
            _permit: permit,
        }
    }

    /// Ask the least recently used holder not asked yet to hibernate (a few
    /// tries: a holder whose mailbox is full is passed over). When every
    /// holder was asked already nobody is asked: those holders give their
    /// slots up in turn, and each new holder is asked while others wait
    /// (see [`InstanceBudget::register`]). `again`: the wait timed out, so
    /// when everyone was asked, start over from the least recently used.
    fn ask_next(&self, except: u64, again: bool) {
        let mut h = self.holders();
        for _ in 0..8 {
            let next = match h.lru.oldest_after(except, h.asked_upto) {
                None if again && h.asked_upto > 0 => {
                    h.asked_upto = 0;
                    h.lru.oldest_after(except, 0)
                }
                next => next,
            };
            let Some((tick, victim)) = next else {
                return;
            };
            h.asked_upto = tick;
            let asked = h
                .mailboxes
                .get(&victim)
                .and_then(|m| m.upgrade())
                .is_some_and(|tx| tx.try_send(Box::new(Command::Hibernate)).is_ok());
            if asked {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slot request running in the background.
    fn wait_for_slot(
        budget: &Arc<InstanceBudget>,
        tx: mpsc::Sender<Box<Command>>,
    ) -> tokio::task::JoinHandle<Slot> {
        let budget = budget.clone();
        tokio::spawn(async move { budget.acquire(tx.downgrade()).await })
    }

    #[test]
    fn oldest_is_the_least_recently_touched() {
        let mut lru = Lru::default();
        lru.touch(1);
        lru.touch(2);
        lru.touch(3);
        assert_eq!(lru.oldest_after(0, 0).map(|(_, id)| id), Some(1));
        lru.touch(1);
        assert_eq!(lru.oldest_after(0, 0).map(|(_, id)| id), Some(2));
        lru.remove(2);
        assert_eq!(lru.oldest_after(0, 0).map(|(_, id)| id), Some(3));
        assert_eq!(lru.len(), 2);
    }

    #[test]
    fn rounds_ask_the_next_oldest_and_skip_the_asker() {
        let mut lru = Lru::default();
        lru.touch(1);
        lru.touch(2);
        lru.touch(3);
        let (t, id) = lru.oldest_after(1, 0).unwrap();
        assert_eq!(id, 2, "the asker itself is never asked");
        assert_eq!(lru.oldest_after(1, t).map(|(_, id)| id), Some(3));
        let (t3, _) = lru.oldest_after(1, t).unwrap();
        assert_eq!(lru.oldest_after(1, t3), None, "everyone asked");
    }

    #[tokio::test]
    async fn a_full_budget_asks_the_least_recently_used_to_hibernate() {
        let budget = InstanceBudget::new(2);
        let (tx_a, mut rx_a) = mpsc::channel(4);
        let (tx_b, mut rx_b) = mpsc::channel(4);
        let (tx_c, _rx_c) = mpsc::channel::<Box<Command>>(4);
        let a = budget.acquire(tx_a.downgrade()).await;
        let b = budget.acquire(tx_b.downgrade()).await;
        assert_eq!(budget.live(), 2);
        a.touch(); // b is now the least recently used
        let waiting = wait_for_slot(&budget, tx_c);
        // b is asked, not a.
        let asked = tokio::time::timeout(Duration::from_secs(5), rx_b.recv())
            .await
            .expect("b asked in time");
        assert!(matches!(asked.as_deref(), Some(Command::Hibernate)));
        assert!(rx_a.try_recv().is_err(), "a was used more recently");
        drop(b); // b hibernates
        let c = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("c got a slot")
            .unwrap();
        assert_eq!(budget.live(), 2);
        drop((a, c));
        assert_eq!(budget.live(), 0);
    }

    #[tokio::test]
    async fn while_others_wait_every_new_holder_is_asked_to_give_its_slot_up() {
        let budget = InstanceBudget::new(1);
        let (tx_a, mut rx_a) = mpsc::channel(4);
        let (tx_b, mut rx_b) = mpsc::channel(4);
        let (tx_c, mut rx_c) = mpsc::channel::<Box<Command>>(4);
        let a = budget.acquire(tx_a.downgrade()).await;
        let b = wait_for_slot(&budget, tx_b);
        assert!(matches!(
            rx_a.recv().await.as_deref(),
            Some(Command::Hibernate)
        ));
        let c = wait_for_slot(&budget, tx_c);
        while budget.holders().waiting < 2 {
            tokio::task::yield_now().await;
        }
        drop(a);
        let b = b.await.unwrap();
        // c still waits: b is asked as soon as it holds the slot.
        assert!(matches!(
            rx_b.recv().await.as_deref(),
            Some(Command::Hibernate)
        ));
        drop(b);
        let _c = c.await.unwrap();
        assert!(rx_c.try_recv().is_err(), "nobody waits for c's slot");
    }

    #[tokio::test]
    async fn a_holder_that_does_not_hibernate_is_passed_over() {
        let budget = InstanceBudget::new(2);
        let (tx_a, mut rx_a) = mpsc::channel(4);
        let (tx_b, mut rx_b) = mpsc::channel(4);
        let (tx_c, _rx_c) = mpsc::channel::<Box<Command>>(4);
        let a = budget.acquire(tx_a.downgrade()).await;
        let b = budget.acquire(tx_b.downgrade()).await;
        let waiting = wait_for_slot(&budget, tx_c);
        // a (oldest) is asked first and ignores it; then b is asked.
        assert!(matches!(
            rx_a.recv().await.as_deref(),
            Some(Command::Hibernate)
        ));
        assert!(matches!(
            rx_b.recv().await.as_deref(),
            Some(Command::Hibernate)
        ));
        drop(b);
        let _c = waiting.await.unwrap();
        drop(a);
    }
}
