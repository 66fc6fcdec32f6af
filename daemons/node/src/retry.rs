//! Waiting out an L1 that cannot be reached, within an epoch's time.

use std::time::{Duration, Instant};

use aztec_prover_l1::L1Error;

/// Longest pause between tries while L1 cannot be reached.
pub const MAX_L1_PAUSE: Duration = Duration::from_secs(10);

/// Waits out an L1 that cannot be reached: when `err` is worth trying
/// again and `pause` ends before `deadline`, says so, sleeps, doubles the
/// pause (up to [`MAX_L1_PAUSE`]) and returns true.
pub async fn wait_for_l1(
    e: u64,
    what: &str,
    err: &L1Error,
    pause: &mut Duration,
    deadline: Instant,
) -> bool {
    if !err.is_retryable() || Instant::now() + *pause >= deadline {
        return false;
    }
    tracing::warn!(
        EPOCH = e,
        "{what}: {err}; trying again in {} ms",
        pause.as_millis()
    );
    tokio::time::sleep(*pause).await;
    *pause = (*pause * 2).min(MAX_L1_PAUSE);
    true
}
