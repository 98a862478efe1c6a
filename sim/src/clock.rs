//! Per-server clocks. Simulated time is one global nanosecond counter; each
//! server reads it through its own offset and drift, and its wall clock may
//! jump. Invariant: the monotonic `Instant` handed to a server never goes
//! backwards (asserted on every read), whatever the wall clock does.

use paddock_core::{Instant, Now};

/// Unix ms at simulated time zero (2023-11-14), so stamps look real.
pub const WALL_EPOCH_MS: i64 = 1_700_000_000_000;
/// Drift is bounded: a clock runs at most 5% fast or slow.
pub const DRIFT_PPM_MAX: i64 = 50_000;

#[derive(Clone, Debug)]
pub struct Clock {
    /// Added to the server's monotonic reading (any origin is legal).
    offset_ns: u64,
    /// Parts per million the server's clock runs fast (+) or slow (-).
    drift_ppm: i64,
    /// Accumulated wall-clock steps.
    wall_jump_ms: i64,
    /// The last monotonic value handed out.
    last_mono: u64,
}

impl Clock {
    pub fn new(offset_ns: u64, drift_ppm: i64) -> Clock {
        assert!(
            drift_ppm.abs() <= DRIFT_PPM_MAX,
            "drift {drift_ppm} ppm beyond {DRIFT_PPM_MAX}"
        );
        Clock {
            offset_ns,
            drift_ppm,
            wall_jump_ms: 0,
            last_mono: 0,
        }
    }

    pub fn exact() -> Clock {
        Clock::new(0, 0)
    }

    fn local(&self, sim_ns: u64) -> u64 {
        // i64 whenever the product fits (runs of up to days): the i128
        // division is a library call, and this runs on every event.
        let skew = match (sim_ns as i64).checked_mul(self.drift_ppm) {
            Some(p) => p / 1_000_000,
            None => (sim_ns as i128 * self.drift_ppm as i128 / 1_000_000) as i64,
        };
        (self.offset_ns as i64 + sim_ns as i64 + skew) as u64
    }

    /// What the server reads at simulated time `sim_ns`.
    pub fn now(&mut self, sim_ns: u64) -> Now {
        let mono = self.local(sim_ns);
        assert!(
            mono >= self.last_mono,
            "monotonic clock went backwards: {mono} < {}",
            self.last_mono
        );
        self.last_mono = mono;
        let wall_ms = WALL_EPOCH_MS + (mono / 1_000_000) as i64 + self.wall_jump_ms;
        Now::new(Instant(mono), wall_ms)
    }

    /// The first simulated time at which this clock reads `deadline` or
    /// later (never before `sim_now`).
    pub fn sim_time_of(&self, deadline: Instant, sim_now: u64) -> u64 {
        let rel = deadline.0 as i128 - self.offset_ns as i128;
        if rel <= 0 {
            return sim_now;
        }
        let rate = 1_000_000 + self.drift_ppm;
        let mut t = match i64::try_from(rel)
            .ok()
            .and_then(|r| r.checked_mul(1_000_000))
        {
            Some(scaled) => scaled.div_euclid(rate) as u64,
            None => (rel * 1_000_000).div_euclid(rate as i128) as u64,
        };
        while self.local(t) < deadline.0 {
            t += 1;
        }
        t.max(sim_now)
    }

    /// An NTP step: the wall clock moves, the monotonic clock does not.
    pub fn jump_wall(&mut self, ms: i64) {
        self.wall_jump_ms += ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_under_drift_and_jumps() {
        let mut c = Clock::new(5_000, -DRIFT_PPM_MAX);
        let mut last = 0;
        for t in (0..10_000_000u64).step_by(997) {
            if t % 7 == 0 {
                c.jump_wall(-3_600_000);
            }
            let now = c.now(t);
            assert!(now.mono.0 >= last, "mono {} after {last}", now.mono.0);
            last = now.mono.0;
        }
    }

    #[test]
    fn deadlines_map_back_to_the_first_sim_time_reaching_them() {
        for drift in [-DRIFT_PPM_MAX, -7, 0, 13, DRIFT_PPM_MAX] {
            let c = Clock::new(123_456, drift);
            for d in [0u64, 1, 999_999, 5_000_000_000, 77_777_777_777] {
                let t = c.sim_time_of(Instant(d), 0);
                assert!(c.local(t) >= d, "drift {drift}: local({t}) < {d}");
                assert!(
                    t == 0 || c.local(t - 1) < d,
                    "drift {drift}: {t} is not the first time reaching {d}"
                );
            }
        }
    }

    #[test]
    fn the_fast_path_agrees_with_wide_arithmetic() {
        for drift in [-DRIFT_PPM_MAX, -7, 0, 13, DRIFT_PPM_MAX] {
            let c = Clock::new(123_456, drift);
            for t in [0u64, 1, 999_999, 77_777_777_777, 1 << 50, 1 << 60] {
                let skew = (t as i128 * drift as i128 / 1_000_000) as i64;
                let wide = (123_456i64 + t as i64 + skew) as u64;
                assert_eq!(c.local(t), wide, "drift {drift} at {t}");
            }
            for d in [123_457u64, 5_000_000_000, 1 << 50] {
                let rel = d as i128 - 123_456;
                let wide = (rel * 1_000_000).div_euclid(1_000_000 + drift as i128) as u64;
                let t = c.sim_time_of(Instant(d), 0);
                assert!(
                    t >= wide,
                    "drift {drift}: {t} before the wide estimate {wide}"
                );
                assert!(c.local(t) >= d && (t == 0 || c.local(t - 1) < d));
            }
        }
    }
}
