//! A circuit breaker per backend: after `failures` consecutive failures the
//! circuit opens and calls are refused at once (UNAVAILABLE / 503) for the
//! cool-down; then one call is let through as a probe (half-open). Its
//! success closes the circuit, its failure opens it for another cool-down.
//!
//! Failing fast matters more than the one backend: callers stop piling up
//! behind a dead practice, and the gateway's own resources (tasks,
//! connections, the callers' deadlines) stay free for the practices that work.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The breaker's state, as reported on readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Circuit {
    /// Calls pass.
    Closed,
    /// Calls are refused until the cool-down ends.
    Open,
    /// One probe call is in flight; others are refused until it ends.
    HalfOpen,
}

impl Circuit {
    /// `closed`, `open` or `half-open`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half-open",
        }
    }
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

/// See the module docs.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

/// Why a call was refused: the circuit is open (or a probe is in flight).
#[derive(Debug, Clone, Copy)]
pub struct Refused {
    /// When the next call may be let through.
    pub retry_after: Duration,
}

impl Breaker {
    /// A closed breaker opening after `threshold` consecutive failures for `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// The consecutive failures that open the circuit.
    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    /// Whether a call may go now. A call admitted must report its outcome
    /// ([`Breaker::success`] or [`Breaker::failure`]); when it was the
    /// half-open probe, that outcome decides the circuit.
    pub fn admit(&self) -> Result<(), Refused> {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Ok(()),
            State::Open { until } => {
                let now = Instant::now();
                if now >= until {
                    *state = State::HalfOpen;
                    Ok(())
                } else {
                    Err(Refused {
                        retry_after: until - now,
                    })
                }
            }
            // A probe is already out: the others wait for its verdict.
            State::HalfOpen => Err(Refused {
                retry_after: Duration::from_secs(1),
            }),
        }
    }

    /// The call (or probe) succeeded: the circuit closes.
    pub fn success(&self) {
        let mut state = self.lock();
        *state = State::Closed { failures: 0 };
    }

    /// The call failed. Returns true when this failure opened the circuit.
    pub fn failure(&self) -> bool {
        let mut state = self.lock();
        match *state {
            State::Closed { failures } if failures + 1 < self.threshold => {
                *state = State::Closed {
                    failures: failures + 1,
                };
                false
            }
            State::Closed { .. } | State::HalfOpen => {
                *state = State::Open {
                    until: Instant::now() + self.cooldown,
                };
                true
            }
            // A call admitted before the circuit opened: it changes nothing.
            State::Open { .. } => false,
        }
    }

    /// The current state (an expired open circuit reads as half-open: the next call probes).
    pub fn circuit(&self) -> Circuit {
        match *self.lock() {
            State::Closed { .. } => Circuit::Closed,
            State::Open { until } if Instant::now() < until => Circuit::Open,
            State::Open { .. } | State::HalfOpen => Circuit::HalfOpen,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain value: a panic elsewhere cannot leave it half-updated.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_probes_after_the_cooldown() {
        let breaker = Breaker::new(3, Duration::from_millis(50));
        assert!(!breaker.failure());
        assert!(!breaker.failure());
        breaker.success();
        assert!(!breaker.failure());
        assert!(!breaker.failure());
        assert_eq!(breaker.circuit(), Circuit::Closed);
        assert!(breaker.failure(), "the third consecutive failure opens it");
        assert_eq!(breaker.circuit(), Circuit::Open);
        assert!(breaker.admit().is_err());

        std::thread::sleep(Duration::from_millis(60));
        breaker.admit().expect("one probe goes through");
        assert!(breaker.admit().is_err(), "only one probe at a time");
        assert!(breaker.failure(), "a failed probe opens it again");
        assert!(breaker.admit().is_err());

        std::thread::sleep(Duration::from_millis(60));
        breaker.admit().expect("the next probe");
        breaker.success();
        assert_eq!(breaker.circuit(), Circuit::Closed);
        breaker.admit().expect("closed again");
    }
}
