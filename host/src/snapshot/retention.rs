//! Which snapshots of a projection's history to keep.
//!
//! The rule (`--snapshot-history RECENT:SPACING`, default `8:100000`):
//! - the `recent` newest snapshots are kept (dense history near the head);
//! - of older ones, the newest snapshot in each window of `spacing` log
//!   positions (`[k·spacing, (k+1)·spacing)`) is kept;
//! - everything else is dropped when a new snapshot is saved.
//!
//! What that bounds:
//! - **Size**: at most `recent + head / spacing` snapshots (one per
//!   `spacing` positions of the log, plus the dense tail).
//! - **Replay distance**: the newest kept snapshot at or below any position
//!   `P` (at or above the first snapshot) is at most `spacing + gap`
//!   positions below it, where `gap` is the largest distance between two
//!   consecutive snapshots taken. The live runtime never lets that gap exceed
//!   `spacing` (it snapshots at least once per `spacing` positions, even
//!   while catching up), so time travel replays at most `2 · spacing`
//!   positions (200,000 by default).
//!
//! `off` keeps only the newest snapshot (no history).

use std::fmt;
use std::str::FromStr;

/// A history retention policy.
/// In JSON (deploy requests, records) it is the same text as the flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Retention {
    /// Newest snapshots always kept (at least 1).
    pub recent: u32,
    /// Width of the windows, in log positions, of which one snapshot each is
    /// kept beyond the recent ones; 0 keeps none beyond them.
    pub spacing: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            recent: 8,
            spacing: 100_000,
        }
    }
}

impl Retention {
    /// Keep only the newest snapshot.
    pub const OFF: Retention = Retention {
        recent: 1,
        spacing: 0,
    };

    /// Does this policy keep any history (more than the newest snapshot)?
    pub fn keeps_history(&self) -> bool {
        *self != Retention::OFF
    }

    /// The most positions time travel replays from a kept snapshot, given
    /// that snapshots are taken at most `spacing` positions apart: `2 ·
    /// spacing` (`None` without history).
    pub fn replay_bound(&self) -> Option<u64> {
        (self.spacing > 0).then(|| self.spacing.saturating_mul(2))
    }

    /// Of `offsets` (ascending, distinct), which to keep: `keep[i]` for
    /// `offsets[i]`.
    pub fn keep(&self, offsets: &[u64]) -> Vec<bool> {
        let n = offsets.len();
        let recent = (self.recent.max(1) as usize).min(n);
        let mut keep = vec![false; n];
        for k in keep.iter_mut().skip(n - recent) {
            *k = true;
        }
        // The newest of each window: the last offset whose window differs
        // from the next one's.
        let window = |o: u64| o.checked_div(self.spacing);
        for i in 0..n {
            let Some(w) = window(offsets[i]) else { break };
            if offsets
                .get(i + 1)
                .is_none_or(|next| window(*next) != Some(w))
            {
                keep[i] = true;
            }
        }
        keep
    }

    /// The offsets of `offsets` (ascending) this policy drops.
    pub fn drops(&self, offsets: &[u64]) -> Vec<u64> {
        offsets
            .iter()
            .zip(self.keep(offsets))
            .filter(|(_, k)| !k)
            .map(|(o, _)| *o)
            .collect()
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Retention::OFF {
            f.write_str("off")
        } else {
            write!(f, "{}:{}", self.recent, self.spacing)
        }
    }
}

/// A `--snapshot-history` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a snapshot history policy: use `off`, or RECENT:SPACING (e.g. `8:100000`: the \
     8 newest snapshots, and one per 100,000 log positions before them), RECENT at least 1"
)]
pub struct RetentionParseError(pub String);

impl TryFrom<String> for Retention {
    type Error = RetentionParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Retention> for String {
    fn from(r: Retention) -> String {
        r.to_string()
    }
}

impl FromStr for Retention {
    type Err = RetentionParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "off" {
            return Ok(Retention::OFF);
        }
        let bad = || RetentionParseError(s.to_string());
        let (recent, spacing) = s.split_once(':').ok_or_else(bad)?;
        let recent: u32 = recent.trim().parse().map_err(|_| bad())?;
        let spacing: u64 = spacing.trim().parse().map_err(|_| bad())?;
        if recent == 0 || recent > 10_000 {
            return Err(bad());
        }
        Ok(Retention { recent, spacing })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simulate(policy: Retention, every: u64, until: u64) -> Vec<u64> {
        let mut kept: Vec<u64> = Vec::new();
        let mut offset = every;
        while offset <= until {
            kept.push(offset);
            let drops = policy.drops(&kept);
            kept.retain(|o| !drops.contains(o));
            offset += every;
        }
        kept
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!("off".parse::<Retention>().unwrap(), Retention::OFF);
        assert_eq!(
            "8:100000".parse::<Retention>().unwrap(),
            Retention::default()
        );
        assert_eq!(Retention::default().to_string(), "8:100000");
        for bad in ["", "8", "0:10", "x:1", "8:-1", "on"] {
            assert!(bad.parse::<Retention>().is_err(), "{bad}");
        }
    }

    #[test]
    fn off_keeps_only_the_newest() {
        assert_eq!(simulate(Retention::OFF, 100, 10_000), vec![10_000]);
    }

    #[test]
    fn keeps_recent_and_one_per_window() {
        let p = Retention {
            recent: 3,
            spacing: 1_000,
        };
        let kept = simulate(p, 100, 5_000);
        // newest of each full window (900, 1900, ...) and the three newest.
        assert_eq!(kept, vec![900, 1_900, 2_900, 3_900, 4_800, 4_900, 5_000]);
    }

    #[test]
    fn count_and_replay_distance_stay_within_the_promise() {
        let p = Retention::default();
        let (every, head) = (100, 1_000_000);
        let kept = simulate(p, every, head);
        assert!(
            kept.len() as u64 <= p.recent as u64 + head / p.spacing,
            "{} snapshots kept",
            kept.len()
        );
        // For every position, the newest kept snapshot at or below it.
        let bound = p.replay_bound().unwrap();
        let first = kept[0];
        assert!(first <= bound);
        let mut worst = 0;
        for pos in first..=head {
            let below = kept.iter().rev().find(|o| **o <= pos).unwrap();
            worst = worst.max(pos - below);
        }
        assert!(worst <= bound, "replay distance {worst} over {bound}");
    }

    #[test]
    fn a_gap_as_wide_as_the_spacing_still_meets_the_bound() {
        let p = Retention {
            recent: 2,
            spacing: 1_000,
        };
        let kept = simulate(p, 1_000, 50_000);
        let bound = p.replay_bound().unwrap();
        for pos in kept[0]..=50_000 {
            let below = kept.iter().rev().find(|o| **o <= pos).unwrap();
            assert!(pos - below <= bound);
        }
    }
}
