//! How long negotiations take to set up: a histogram with fixed bounds, kept by the
//! sans-IO endpoint (it knows when each exchange began and when it completed) and read
//! at scrape time as `espgw_ike_setup_seconds{phase}`.

use std::time::Duration;

/// Upper bounds of the buckets, in seconds: from a LAN Main Mode (a few milliseconds) to
/// one that needed IOS's retransmissions (10 s apart) — the last finite bound is past the
/// fifth resend.
pub const BOUNDS_SECS: [f64; 13] = [
    0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 60.0,
];

/// Setup times of one phase: per-bucket counts (the last is +Inf), their sum and count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetupLatency {
    buckets: [u64; BOUNDS_SECS.len() + 1],
    sum_micros: u64,
}

impl SetupLatency {
    /// One negotiation that took `d`.
    pub fn record(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        let i = BOUNDS_SECS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(BOUNDS_SECS.len());
        self.buckets[i] += 1;
        self.sum_micros = self.sum_micros.saturating_add(d.as_micros() as u64);
    }

    /// Negotiations recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Their total time in seconds.
    pub fn sum_secs(&self) -> f64 {
        self.sum_micros as f64 / 1e6
    }

    /// (upper bound, negotiations in that bucket and not a lower one), ending with +Inf —
    /// what `prometheus-client` takes (its encoder writes them cumulated).
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        BOUNDS_SECS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.buckets)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive_and_the_rest_is_infinite() {
        let mut h = SetupLatency::default();
        h.record(Duration::from_millis(5)); // on a bound: that bucket
        h.record(Duration::from_millis(7));
        h.record(Duration::from_secs(45));
        h.record(Duration::from_secs(600)); // past the last bound: +Inf only
        assert_eq!(h.count(), 4);
        assert!((h.sum_secs() - 645.012).abs() < 1e-9);
        let b = h.buckets();
        assert_eq!(b.len(), BOUNDS_SECS.len() + 1);
        let at = |x: f64| b.iter().find(|(y, _)| *y == x).unwrap().1;
        assert_eq!((at(0.002), at(0.005), at(0.01)), (0, 1, 1));
        assert_eq!((at(30.0), at(60.0)), (0, 1));
        assert_eq!(b.last().unwrap(), &(f64::INFINITY, 1));
        assert_eq!(b.iter().map(|(_, n)| n).sum::<u64>(), h.count());
    }
}
