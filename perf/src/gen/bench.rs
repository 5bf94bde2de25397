//! One generator, one receiver and the counters around them: [`Bench::trial`] runs one
//! trial and checks the receiver's count against counters it did not make itself — the
//! receiving veth's `rx_packets` and the device under test's own forwarding counter.

use super::engine::{Generator, Port, Receiver, RxReport, TxReport, TxTrial};
use super::probe::SizeMix;
use crate::dut::netns::LinkCounters;
use std::time::Duration;

/// A counter of the device under test: a name and a way to read it.
pub type DutCounter<'a> = &'a dyn Fn() -> Option<u64>;

/// The generator/receiver pair of a run.
pub struct Bench {
    pub gen: Generator,
    pub rx: Receiver,
    pub rx_port: Port,
    /// The generator's own interface (its tx counters say what left).
    pub tx_port: Port,
    next_trial: u8,
    /// Counters read at the end of the last trial: the start of the next one (nothing
    /// is sent between trials), so each trial reads them once.
    last: Option<(LinkCounters, LinkCounters, Option<u64>)>,
    /// Pause after the last frame before the counts are read (frames in flight).
    pub drain: Duration,
}

/// Counters over one trial (warm-up included: they cannot tell trials apart).
#[derive(Debug, Clone, Copy, Default)]
pub struct Consistency {
    /// Frames the generator handed to its interface (warm-up + trial).
    pub sent: u64,
    /// Frames the receiver read from its sockets, any kind.
    pub receiver: u64,
    /// Frames the kernel dropped at the receiver's sockets (the receiver's loss).
    pub receiver_dropped: u64,
    /// `rx_packets` of the receiving veth.
    pub veth_rx: u64,
    /// Frames the receiver's XDP classifier redirected to its sockets (its own count;
    /// shown, not checked: it is read from per-CPU maps at the end of each trial).
    pub xdp_steered: u64,
    /// `tx_packets` of the sending veth.
    pub veth_tx: u64,
    /// The DUT's own counter, where it has one.
    pub dut: Option<u64>,
    /// Whether the counts agree: veth_tx = sent, receiver ≤ veth_rx ≤ receiver + slack,
    /// receiver ≤ DUT ≤ sent (+ slack).
    pub ok: bool,
}

/// No frame for this long: the DUT has delivered all it will of a trial.
const QUIET: Duration = Duration::from_millis(150);
/// The longest a trial waits for its frames after the last was sent (RFC 2544 §23 waits 2 s).
const SETTLE_MAX: Duration = Duration::from_secs(3);

/// Frames the kernel may see beside ours in a trial (ARP, a stray neighbour probe).
const SLACK: u64 = 16;

impl Consistency {
    fn check(&mut self) {
        let seen = self.receiver + self.receiver_dropped;
        let veth_ok = self.veth_rx >= seen && self.veth_rx <= seen + SLACK;
        let tx_ok = self.veth_tx + SLACK >= self.sent && self.veth_tx <= self.sent + SLACK;
        let dut_ok = self
            .dut
            .is_none_or(|d| d + SLACK >= self.receiver && d <= self.sent + SLACK);
        self.ok = veth_ok && tx_ok && dut_ok;
    }

    /// `sent 1000 = veth tx 1000 | DUT 1000 | veth rx 1000 = receiver 1000: agree`.
    pub fn line(&self) -> String {
        format!(
            "sent {} / veth tx {} | DUT {} | veth rx {} / receiver {} + dropped at its sockets {}: {}",
            self.sent,
            self.veth_tx,
            self.dut.map_or("-".to_string(), |d| d.to_string()),
            self.veth_rx,
            self.receiver,
            self.receiver_dropped,
            if self.ok { "agree" } else { "DISAGREE" }
        )
    }
}

/// One trial's outcome.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Asked-for rate (None: full speed).
    pub offered_pps: Option<f64>,
    pub sizes: SizeMix,
    pub tx: TxReport,
    pub rx: RxReport,
    pub counters: Consistency,
}

impl Outcome {
    pub fn sent(&self) -> u64 {
        self.tx.total()
    }
    /// Rate the generator achieved.
    pub fn tx_pps(&self) -> f64 {
        self.sent() as f64 / self.tx.secs.max(1e-9)
    }
    /// Frames delivered per second of the sending interval.
    pub fn rx_pps(&self) -> f64 {
        self.rx.unique as f64 / self.tx.secs.max(1e-9)
    }
    pub fn loss_ratio(&self) -> f64 {
        if self.sent() == 0 {
            0.0
        } else {
            self.rx.lost as f64 / self.sent() as f64
        }
    }
    /// Gbit/s of frames (Ethernet header to payload) delivered.
    pub fn rx_gbps(&self) -> f64 {
        self.rx.bytes as f64 * 8.0 / self.tx.secs.max(1e-9) / 1e9
    }
    /// Latency percentile in µs.
    pub fn latency_us(&self, q: f64) -> f64 {
        if self.rx.latency.is_empty() {
            return f64::NAN;
        }
        self.rx.latency.value_at_quantile(q) as f64 / 1e3
    }
    pub fn latency_max_us(&self) -> f64 {
        if self.rx.latency.is_empty() {
            return f64::NAN;
        }
        self.rx.latency.max() as f64 / 1e3
    }
}

impl Bench {
    pub fn new(gen: Generator, rx: Receiver, tx_port: Port, rx_port: Port) -> Bench {
        Bench {
            gen,
            rx,
            rx_port,
            tx_port,
            next_trial: 1,
            last: None,
            drain: Duration::from_millis(60),
        }
    }

    fn counters(&self) -> (LinkCounters, LinkCounters) {
        let r = LinkCounters::read(self.rx_port.netns.as_deref(), &self.rx_port.ifname)
            .unwrap_or_default();
        let t = LinkCounters::read(self.tx_port.netns.as_deref(), &self.tx_port.ifname)
            .unwrap_or_default();
        (t, r)
    }

    /// Waits until no frame has reached the receiver for [`QUIET`] (at least `drain`,
    /// at most [`SETTLE_MAX`]): a DUT with deep queues (strongSwan's libipsec, a 3DES
    /// worker behind) still delivers frames of this trial long after the last one was
    /// sent, and they belong to this trial, not to the next one's counts.
    fn settle(&self) {
        std::thread::sleep(self.drain);
        let start = std::time::Instant::now();
        let mut last = self.rx.total_frames();
        let mut still = std::time::Instant::now();
        while start.elapsed() < SETTLE_MAX {
            std::thread::sleep(Duration::from_millis(25));
            let now = self.rx.total_frames();
            if now != last {
                last = now;
                still = std::time::Instant::now();
            } else if still.elapsed() >= QUIET {
                break;
            }
        }
    }

    /// Forgets the counters read at the end of the last trial (something else sent
    /// traffic since: trafgen).
    pub fn forget_counters(&mut self) {
        self.last = None;
    }

    /// Runs one trial: `rate` frames/s (None: full speed) for `duration` after `warmup`,
    /// or a burst of `burst` frames at full speed when given.
    pub fn trial(
        &mut self,
        rate: Option<f64>,
        duration: Duration,
        warmup: Duration,
        sizes: SizeMix,
        burst: Option<u64>,
        dut: DutCounter<'_>,
    ) -> Outcome {
        let trial = self.next_trial;
        self.next_trial = if trial == 255 { 1 } else { trial + 1 };
        let (t0, r0, d0) = match self.last.take() {
            Some(l) => l,
            None => {
                let (t, r) = self.counters();
                (t, r, dut())
            }
        };
        let rx0 = self.rx.total_frames();
        let drop0 = self.rx.dropped();
        let steer0 = self.rx.steered();
        self.rx.begin(trial);
        let spec = TxTrial {
            trial,
            rate_pps: rate,
            duration: if burst.is_some() {
                Duration::ZERO
            } else {
                duration
            },
            warmup,
            max_frames: burst,
            sizes,
        };
        let tx = self.gen.run(&spec);
        self.settle();
        let rx = self
            .rx
            .finish(&tx.sent)
            .expect("the receiver thread answers");
        let (t1, r1) = self.counters();
        let d1 = dut();
        self.last = Some((t1, r1, d1));
        let mut counters = Consistency {
            sent: tx.total() + tx.warmup_sent,
            receiver: self.rx.total_frames() - rx0,
            receiver_dropped: self.rx.dropped() - drop0,
            xdp_steered: self.rx.steered().wrapping_sub(steer0),
            veth_rx: r1.since(&r0).rx_packets,
            veth_tx: t1.since(&t0).tx_packets,
            dut: d0.zip(d1).map(|(a, b)| b.wrapping_sub(a)),
            ok: false,
        };
        counters.check();
        Outcome {
            offered_pps: rate,
            sizes,
            tx,
            rx,
            counters,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistency_rules() {
        let mut c = Consistency {
            sent: 1000,
            receiver: 990,
            veth_rx: 991,
            veth_tx: 1000,
            receiver_dropped: 0,
            xdp_steered: 990,
            dut: Some(995),
            ok: false,
        };
        c.check();
        assert!(c.ok, "{}", c.line());
        c.veth_rx = 900; // the receiver claims frames the interface never saw
        c.check();
        assert!(!c.ok);
        c.veth_rx = 991;
        c.dut = Some(2000); // the DUT forwarded more than was sent
        c.check();
        assert!(!c.ok);
        c.dut = None;
        c.check();
        assert!(c.ok);
    }
}
