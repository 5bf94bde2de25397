//! Transmit pacing: a token bucket whose tokens are computed from the time since the
//! trial started (rate × elapsed − sent), so the long-run rate is exact at any rate and
//! no rounding drifts; the bucket depth caps the burst after a stall.

use std::time::Duration;

/// Paces one generator thread. Sans-IO: the caller passes the time.
#[derive(Debug, Clone)]
pub struct Pacer {
    /// Frames per second; `None`: as fast as the rings take them.
    rate: Option<f64>,
    start_ns: u64,
    sent: u64,
    /// Most frames one call grants after a stall.
    depth: u64,
}

impl Pacer {
    pub fn new(rate: Option<f64>, start_ns: u64, depth: u64) -> Pacer {
        Pacer {
            rate: rate.filter(|r| *r > 0.0),
            start_ns,
            sent: 0,
            depth: depth.max(1),
        }
    }

    /// Frames that may leave now (at most the bucket depth).
    pub fn allowed(&mut self, now_ns: u64) -> u64 {
        let Some(rate) = self.rate else {
            return self.depth;
        };
        let elapsed = now_ns.saturating_sub(self.start_ns) as f64 / 1e9;
        // +1: the first frame leaves at t=0.
        let due = (elapsed * rate) as u64 + 1;
        let owed = due.saturating_sub(self.sent);
        if owed > self.depth {
            // A stall (preemption): forget what could not be sent, or the catch-up burst
            // would be a test of its own. The frames are simply not offered.
            self.sent = due - self.depth;
            return self.depth;
        }
        owed
    }

    /// Records `n` frames sent.
    pub fn sent(&mut self, n: u64) {
        self.sent += n;
    }

    /// How long until the next frame is due (zero when one is due now or at full speed).
    pub fn wait(&self, now_ns: u64) -> Duration {
        let Some(rate) = self.rate else {
            return Duration::ZERO;
        };
        let next_ns = self.start_ns as f64 + self.sent as f64 / rate * 1e9;
        Duration::from_nanos((next_ns - now_ns as f64).max(0.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_rate_at_low_and_high_rates() {
        for rate in [10.0, 1000.0, 123_457.0, 2.0e6] {
            let mut p = Pacer::new(Some(rate), 1_000, 64);
            let mut sent = 0;
            // Poll every 7 µs for 2 s of virtual time.
            let mut t = 1_000u64;
            while t < 1_000 + 2_000_000_000 {
                let n = p.allowed(t);
                p.sent(n);
                sent += n;
                t += 7_000;
            }
            let want = rate * 2.0;
            assert!(
                (sent as f64 - want).abs() <= 1.0 + want * 1e-6,
                "rate {rate}: {sent} vs {want}"
            );
        }
    }

    #[test]
    fn a_stall_does_not_burst_beyond_the_depth() {
        let mut p = Pacer::new(Some(1e6), 0, 32);
        assert_eq!(p.allowed(0), 1);
        p.sent(1);
        // 10 ms stall: 10 000 frames due, only the depth is granted.
        assert_eq!(p.allowed(10_000_000), 32);
        p.sent(32);
        assert_eq!(p.allowed(10_000_000), 0);
        assert!(p.wait(10_000_000) > Duration::ZERO);
    }

    #[test]
    fn full_speed_grants_the_depth() {
        let mut p = Pacer::new(None, 0, 64);
        assert_eq!(p.allowed(5), 64);
        assert_eq!(p.wait(5), Duration::ZERO);
    }
}
