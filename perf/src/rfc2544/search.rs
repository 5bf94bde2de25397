//! The RFC 2544 procedure for one DUT and one frame size, over a trial function (so the
//! procedure is tested here against a model DUT; the real trials are AF_XDP traffic):
//!
//! 1. **Full speed**: what the generator can offer (and the loss there).
//! 2. **Throughput** (§26.1): binary search for the highest rate whose loss ratio is at
//!    most the tolerance (0: zero loss), starting at the rate delivered at full speed,
//!    until the bounds are within `resolution` of each other or `max_steps` trials.
//! 3. **Latency** (§26.2, extended): one trial each at 10, 50, 90 and 100 % of the
//!    throughput; percentiles from the receiver's HDR histogram.
//! 4. **Frame loss rate vs offered load** (§26.3): every trial above is a point.
//! 5. **Back-to-back** (§26.4): binary search for the longest burst at full speed that
//!    arrives whole.

use crate::gen::bench::Outcome;

/// Why a trial runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Full,
    Search,
    Latency(u32),
    Burst(u64),
}

impl Kind {
    pub fn name(&self) -> String {
        match *self {
            Kind::Full => "full-speed".into(),
            Kind::Search => "search".into(),
            Kind::Latency(p) => format!("latency@{p}%"),
            Kind::Burst(_) => "burst".into(),
        }
    }
}

/// Procedure settings.
#[derive(Debug, Clone)]
pub struct Opts {
    pub loss_tolerance: f64,
    /// Stop the search when (hi - lo) / hi is below this.
    pub resolution: f64,
    pub max_steps: u32,
    /// Latency trials at these percentages of the throughput.
    pub latency_loads: Vec<u32>,
    /// Longest burst tried, in seconds of full-speed frames.
    pub burst_secs: f64,
    pub burst_steps: u32,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            loss_tolerance: 0.0,
            resolution: 0.03,
            max_steps: 6,
            latency_loads: vec![10, 50, 90, 100],
            burst_secs: 0.02,
            burst_steps: 6,
        }
    }
}

/// What the procedure found.
#[derive(Debug, Clone)]
pub struct Found {
    /// Every trial, in order.
    pub trials: Vec<(Kind, Outcome)>,
    /// Index into `trials` of the best passing search (or full-speed) trial.
    pub throughput: Option<usize>,
    /// The generator's offered rate at full speed.
    pub max_offered_pps: f64,
    /// The DUT passed at full speed: the number is the generator's, the DUT may do more.
    pub generator_bound: bool,
    /// Longest whole burst (frames), and whether it was the longest tried.
    pub back_to_back: Option<(u64, bool)>,
}

impl Found {
    pub fn throughput(&self) -> Option<&Outcome> {
        self.throughput.map(|i| &self.trials[i].1)
    }

    /// The latency trial at `pct` % of the throughput.
    pub fn latency(&self, pct: u32) -> Option<&Outcome> {
        self.trials
            .iter()
            .find(|(k, _)| *k == Kind::Latency(pct))
            .map(|(_, o)| o)
    }

    /// Frames lost in trials offered at most half the rate the DUT delivered at full
    /// speed (its capacity), and frames sent in them: a DUT that loses frames there loses
    /// them at any load (a lossy link, a stalling worker), whatever the search found.
    pub fn loss_below_half_load(&self) -> (u64, u64) {
        let half = self.trials.first().map_or(0.0, |(_, o)| o.rx_pps()) / 2.0;
        self.trials
            .iter()
            .filter(|(k, o)| !matches!(k, Kind::Burst(_)) && o.tx_pps() <= half)
            .fold((0, 0), |(l, s), (_, o)| (l + o.rx.lost, s + o.sent()))
    }

    /// Loss below half load is not zero.
    pub fn lossy(&self) -> bool {
        self.loss_below_half_load().0 > 0
    }
}

/// Runs the procedure; `trial(rate, burst, kind)` runs one trial (rate None = full speed;
/// burst Some(n) = n frames at full speed).
pub fn run(opts: &Opts, trial: &mut dyn FnMut(Option<f64>, Option<u64>, Kind) -> Outcome) -> Found {
    let mut trials: Vec<(Kind, Outcome)> = Vec::new();
    let pass = |o: &Outcome| o.sent() > 0 && o.loss_ratio() <= opts.loss_tolerance;
    let full = trial(None, None, Kind::Full);
    let max_offered = full.tx_pps();
    let full_delivered = full.rx_pps();
    let full_pass = pass(&full);
    trials.push((Kind::Full, full));
    let mut best: Option<usize> = None;
    let mut generator_bound = false;
    if full_pass {
        best = Some(0);
        generator_bound = true;
    } else {
        let (mut lo, mut hi) = (0.0f64, max_offered);
        // The delivered rate at overload is where the capacity usually is: try just under it.
        let mut rate = (full_delivered * 0.98).clamp(max_offered * 0.01, max_offered * 0.98);
        for _ in 0..opts.max_steps {
            let o = trial(Some(rate), None, Kind::Search);
            let ok = pass(&o);
            trials.push((Kind::Search, o));
            if ok {
                lo = rate;
                best = Some(trials.len() - 1);
            } else {
                hi = rate;
            }
            if hi <= 0.0 || (hi - lo) / hi < opts.resolution {
                break;
            }
            rate = (lo + hi) / 2.0;
            if rate < max_offered * 0.005 {
                break;
            }
        }
    }
    if let Some(b) = best {
        let tput = if generator_bound {
            trials[b].1.tx_pps()
        } else {
            trials[b].1.offered_pps.unwrap_or(max_offered)
        };
        for &pct in &opts.latency_loads {
            let rate = tput * f64::from(pct) / 100.0;
            let o = if pct >= 100 && generator_bound {
                trial(None, None, Kind::Latency(pct))
            } else {
                trial(Some(rate), None, Kind::Latency(pct))
            };
            trials.push((Kind::Latency(pct), o));
        }
    }
    // Back-to-back: the longest burst at full speed that arrives whole.
    let max_burst = ((max_offered * opts.burst_secs) as u64).max(64);
    let mut back_to_back = None;
    if opts.burst_steps > 0 {
        let (mut lo, mut hi) = (0u64, max_burst);
        let mut len = max_burst;
        for _ in 0..opts.burst_steps {
            let o = trial(None, Some(len), Kind::Burst(len));
            let ok = o.sent() == len && o.rx.lost == 0;
            trials.push((Kind::Burst(len), o));
            if ok {
                lo = len;
                if len == max_burst {
                    break;
                }
            } else {
                hi = len;
            }
            if hi - lo <= (max_burst / 64).max(1) {
                break;
            }
            len = (lo + hi) / 2;
        }
        back_to_back = Some((lo, lo == max_burst));
    }
    Found {
        trials,
        throughput: best,
        max_offered_pps: max_offered,
        generator_bound,
        back_to_back,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::bench::Consistency;
    use crate::gen::engine::{RxReport, TxReport};
    use crate::gen::probe::SizeMix;

    /// A model DUT for the procedure's logic: forwards up to `cap` frames/s and a queue
    /// of `queue` frames, loses the excess; the generator offers at most `gen`.
    fn model(
        cap: f64,
        gen: f64,
        queue: u64,
        random_loss: f64,
    ) -> impl FnMut(Option<f64>, Option<u64>, Kind) -> Outcome {
        move |rate, burst, _| {
            let offered = rate.unwrap_or(gen).min(gen);
            let (sent, secs) = match burst {
                Some(b) => (b, b as f64 / gen),
                None => ((offered * 0.5) as u64, 0.5),
            };
            let mut lost = match burst {
                Some(b) => b.saturating_sub((cap * secs) as u64 + queue),
                None => (sent as f64 * (1.0 - (cap / offered).min(1.0))) as u64,
            };
            lost += (sent as f64 * random_loss).ceil() as u64 * u64::from(random_loss > 0.0);
            let lost = lost.min(sent);
            Outcome {
                offered_pps: rate,
                sizes: SizeMix::Fixed(64),
                tx: TxReport {
                    sent: vec![sent],
                    bytes: sent * 64,
                    secs,
                    warmup_sent: 0,
                },
                rx: RxReport {
                    frames: sent - lost,
                    bytes: (sent - lost) * 64,
                    unique: sent - lost,
                    lost,
                    duplicates: 0,
                    reordered: 0,
                    other_trial: 0,
                    foreign: 0,
                    latency: hdrhistogram::Histogram::new(3).unwrap(),
                },
                counters: Consistency::default(),
            }
        }
    }

    #[test]
    fn finds_the_capacity_within_the_resolution() {
        let opts = Opts::default();
        let f = run(&opts, &mut model(300_000.0, 1_000_000.0, 1000, 0.0));
        let t = f.throughput().expect("a zero-loss rate");
        let r = t.offered_pps.unwrap();
        assert!(
            r <= 300_000.0 && r >= 300_000.0 * (1.0 - 2.0 * opts.resolution),
            "{r}"
        );
        assert!(!f.generator_bound && !f.lossy());
        for p in [10, 50, 90, 100] {
            let l = f.latency(p).expect("latency trial");
            assert!((l.offered_pps.unwrap() - r * f64::from(p) / 100.0).abs() < 1.0);
        }
        // 0.02 s at 1 Mpps = 20 000 frames; whole if cap*t + queue >= len.
        let (b2b, capped) = f.back_to_back.unwrap();
        assert!(!capped && b2b > 1000 && b2b < 20_000, "{b2b}");
    }

    #[test]
    fn a_dut_faster_than_the_generator_is_generator_bound() {
        let f = run(&Opts::default(), &mut model(5e6, 1e6, 0, 0.0));
        assert!(f.generator_bound);
        assert_eq!(f.throughput, Some(0));
        assert_eq!(f.back_to_back, Some((20_000, true)));
    }

    #[test]
    fn a_lossy_link_is_reported_as_lossy() {
        let f = run(&Opts::default(), &mut model(5e6, 1e6, 0, 0.001));
        assert!(f.lossy());
        assert!(f.throughput.is_none());
        let tolerant = Opts {
            loss_tolerance: 0.01,
            ..Opts::default()
        };
        let f = run(&tolerant, &mut model(5e6, 1e6, 0, 0.001));
        assert!(f.throughput.is_some() && f.generator_bound);
    }
}
