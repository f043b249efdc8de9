//! Passive health: what real traffic says about a backend, next to what its probe says.
//!
//! A backend whose connections fail or which answers 5xx `limits.outlierConsecutiveFailures`
//! times in a row leaves the rotation for `limits.outlierEjectionTime` at once, without
//! waiting for `unhealthyThreshold` probes (outlier ejection, as Envoy's `consecutive_5xx`
//! detector does). Any other answer resets the count. When the time is up it is back in the
//! rotation if its probe still says it is healthy.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Outlier ejection settings (`limits.outlierConsecutiveFailures`, `outlierEjectionTime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outlier {
    /// Consecutive failures that eject a backend (at least 1).
    pub failures: u32,
    /// How long an ejected backend stays out.
    pub ejection: Duration,
}

/// One backend's passive health.
#[derive(Debug, Default)]
pub struct PassiveHealth {
    consecutive: AtomicU32,
    ejected_until: Mutex<Option<Instant>>,
    ejections: AtomicU64,
}

impl PassiveHealth {
    /// Records what one request or handshake said: `ok` is any answer below 500; a connect
    /// failure, a broken or timed-out exchange and a 5xx are failures. Returns whether this
    /// failure ejected the backend.
    pub fn record(&self, ok: bool, outlier: Option<Outlier>) -> bool {
        if ok {
            self.consecutive.store(0, Ordering::Release);
            return false;
        }
        let Some(outlier) = outlier else {
            return false;
        };
        let n = self
            .consecutive
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if n < outlier.failures.max(1) {
            return false;
        }
        self.consecutive.store(0, Ordering::Release);
        if let Ok(mut until) = self.ejected_until.lock() {
            *until = Some(Instant::now() + outlier.ejection);
        }
        self.ejections.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// How much longer the backend stays ejected, if it is.
    pub fn ejected_for(&self) -> Option<Duration> {
        let until = (*self.ejected_until.lock().ok()?)?;
        until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// Whether the backend is out of the rotation by outlier ejection now.
    pub fn is_ejected(&self) -> bool {
        self.ejected_for().is_some()
    }

    /// Times the backend was ejected.
    pub fn ejections(&self) -> u64 {
        self.ejections.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_failures_eject_and_a_success_resets_the_count() {
        let h = PassiveHealth::default();
        let o = Some(Outlier {
            failures: 3,
            ejection: Duration::from_secs(60),
        });
        assert!(!h.record(false, o));
        assert!(!h.record(false, o));
        assert!(!h.record(true, o));
        assert!(!h.record(false, o));
        assert!(!h.record(false, o));
        assert!(!h.is_ejected());
        assert!(h.record(false, o));
        assert!(h.is_ejected());
        assert_eq!(h.ejections(), 1);
    }

    #[test]
    fn off_never_ejects_and_ejection_ends() {
        let h = PassiveHealth::default();
        for _ in 0..10 {
            assert!(!h.record(false, None));
        }
        assert!(!h.is_ejected());
        let o = Some(Outlier {
            failures: 1,
            ejection: Duration::from_millis(1),
        });
        assert!(h.record(false, o));
        std::thread::sleep(Duration::from_millis(5));
        assert!(!h.is_ejected());
    }
}
