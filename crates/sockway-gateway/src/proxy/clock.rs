//! The relay's activity clock: milliseconds read from `CLOCK_MONOTONIC_COARSE` on Linux.
//!
//! The idle limit (`requestTimeout`, seconds) and keep-alive (half of it) only need to know
//! when a side last sent bytes to the millisecond or so, but the relay notes it for every
//! chunk it moves. The coarse clock is the kernel's time as of the last timer tick (1 to
//! 10 ms old, clock_gettime(2)), read from the vDSO without the TSC read and scaling that
//! `CLOCK_MONOTONIC`, [`std::time::Instant`]'s clock, costs; nginx likewise notes the time
//! once per event-loop turn (`ngx_time_update`) rather than per read. Both clocks count
//! from the same origin, so a time noted with this clock is at most one tick behind
//! [`Instant`](std::time::Instant)'s; elsewhere (and should the call fail) it counts from
//! the first reading with [`Instant`](std::time::Instant).

/// Milliseconds since an arbitrary, fixed origin (the same for the whole process).
#[cfg(target_os = "linux")]
pub fn now_ms() -> u64 {
    use nix::time::{clock_gettime, ClockId};
    match clock_gettime(ClockId::CLOCK_MONOTONIC_COARSE) {
        Ok(t) => {
            let secs = u64::try_from(t.tv_sec()).unwrap_or(0);
            let nanos = u64::try_from(t.tv_nsec()).unwrap_or(0);
            secs.saturating_mul(1000) + nanos / 1_000_000
        }
        Err(_) => fallback_ms(),
    }
}

/// Milliseconds since an arbitrary, fixed origin (the same for the whole process).
#[cfg(not(target_os = "linux"))]
pub fn now_ms() -> u64 {
    fallback_ms()
}

/// Milliseconds since the first call, with [`Instant`](std::time::Instant).
fn fallback_ms() -> u64 {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let origin = *ORIGIN.get_or_init(std::time::Instant::now);
    u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::now_ms;
    use std::time::{Duration, Instant};

    #[test]
    fn follows_the_monotonic_clock_within_a_tick() {
        let (start, start_ms) = (Instant::now(), now_ms());
        std::thread::sleep(Duration::from_millis(50));
        let coarse = now_ms().saturating_sub(start_ms);
        let fine = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        // A coarse reading lags by at most one timer tick (10 ms at HZ=100) at either end.
        assert!(coarse >= 30, "coarse clock moved {coarse} ms in {fine} ms");
        assert!(
            coarse <= fine + 20,
            "coarse clock moved {coarse} ms in {fine} ms"
        );
    }
}
