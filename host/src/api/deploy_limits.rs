//! The most a deploy may ask for in each per-projection limit.

use super::ApiError;
use crate::projection::ProjectionOptions;

/// The most a deploy may ask for in each per-projection limit (set by
/// `hume serve --max-call-timeout / --max-memory / --max-snapshot /
/// --max-batch-size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeployMaximums {
    /// Largest `call_timeout_ms`.
    pub call_timeout_ms: u64,
    /// Largest `max_memory_bytes`.
    pub max_memory_bytes: u64,
    /// Largest `max_snapshot_bytes`.
    pub max_snapshot_bytes: u64,
    /// Largest `batch_size`.
    pub batch_size: u32,
}

impl Default for DeployMaximums {
    fn default() -> Self {
        DeployMaximums {
            call_timeout_ms: 60_000,
            max_memory_bytes: 1 << 30,
            max_snapshot_bytes: 256 << 20,
            batch_size: 10_000,
        }
    }
}

impl DeployMaximums {
    /// A limit left at its default gets the server's maximum when that is
    /// lower: a server started with `--max-memory 128M` deploys a
    /// projection that does not ask for more at 128 MiB.
    pub fn fit_defaults(&self, options: &mut ProjectionOptions) {
        let defaults = ProjectionOptions::default();
        if options.call_timeout_ms == defaults.call_timeout_ms {
            options.call_timeout_ms = options.call_timeout_ms.min(self.call_timeout_ms);
        }
        if options.max_memory_bytes == defaults.max_memory_bytes {
            options.max_memory_bytes = options.max_memory_bytes.min(self.max_memory_bytes);
        }
        if options.max_snapshot_bytes == defaults.max_snapshot_bytes {
            options.max_snapshot_bytes = options.max_snapshot_bytes.min(self.max_snapshot_bytes);
        }
        if options.batch_size == defaults.batch_size {
            options.batch_size = options.batch_size.min(self.batch_size);
        }
    }

    /// Check deploy options against the maximums: a 400 naming the first
    /// option over its maximum, the maximum and the server flag that sets it.
    pub fn check(&self, options: &ProjectionOptions) -> Result<(), ApiError> {
        let checks: [(&str, u64, u64, &str, &str); 4] = [
            (
                "call_timeout_ms",
                options.call_timeout_ms,
                self.call_timeout_ms,
                "ms",
                "--max-call-timeout",
            ),
            (
                "max_memory_bytes",
                options.max_memory_bytes,
                self.max_memory_bytes,
                "bytes",
                "--max-memory",
            ),
            (
                "max_snapshot_bytes",
                options.max_snapshot_bytes,
                self.max_snapshot_bytes,
                "bytes",
                "--max-snapshot",
            ),
            (
                "batch_size",
                u64::from(options.batch_size),
                u64::from(self.batch_size),
                "events",
                "--max-batch-size",
            ),
        ];
        for (name, asked, max, unit, flag) in checks {
            if asked > max {
                let field = format!("options.{name}");
                return Err(ApiError::bad_field(
                    field.clone(),
                    format!(
                        "`{field}` asks for {asked} {unit}, over this server's maximum of {max} \
                         {unit} (`hume serve {flag}`): ask for at most {max}; nothing was deployed"
                    ),
                ));
            }
        }
        Ok(())
    }
}
