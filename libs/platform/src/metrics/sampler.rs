//! Gauges read from somewhere else (a database, a pool) on a fixed period.
//!
//! A sample that fails is logged once (WARN, with the error), then quietly
//! retried every period until it works again (logged at INFO), so a database
//! outage gives two lines, not one per tick, and never stops the process. A
//! sample taking longer than the period is abandoned: samples never pile up.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

/// Runs `sample` now and then every `every` until `stop` completes. `what`
/// names the gauges in the logs ("incidents gauges").
pub async fn run<F, Fut, E>(
    what: &str,
    every: Duration,
    stop: impl Future<Output = ()>,
    mut sample: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    tokio::pin!(stop);
    let mut ticks = tokio::time::interval(every);
    // After a slow sample, sample at the next period, not twice in a row.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = ticks.tick() => {}
        }
        let outcome = tokio::select! {
            () = &mut stop => return,
            outcome = tokio::time::timeout(every, sample()) => outcome,
        };
        match outcome {
            Ok(Ok(())) => {
                if failing {
                    tracing::info!(what, "sampling works again");
                    failing = false;
                }
            }
            Ok(Err(error)) if !failing => {
                tracing::warn!(what, %error, "sampling failed; the gauges keep their last values and sampling is retried every period");
                failing = true;
            }
            Err(_) if !failing => {
                tracing::warn!(what, timeout = ?every, "sampling took longer than its period; retried every period");
                failing = true;
            }
            Ok(Err(error)) => tracing::debug!(what, %error, "sampling still fails"),
            Err(_) => tracing::debug!(what, "sampling still too slow"),
        }
    }
}
