//! Timing helpers. The machine is shared (two cores, many builds), so time is the CPU time
//! of the benchmark thread (CLOCK_THREAD_CPUTIME_ID), not wall time: a rate is bytes per
//! CPU-second on one core. Candidates are measured interleaved in short slices and each
//! keeps its best slice, so a ratio taken in one run compares like with like.

use std::time::{Duration, Instant};

use nix::time::{clock_gettime, ClockId};

/// CPU time consumed by this thread.
fn thread_time() -> Duration {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

/// Nominal core clock in Hz, from /proc/cpuinfo ("cpu MHz"); cycles/byte are computed
/// from it.
pub fn cpu_hz() -> f64 {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("cpu MHz"))
                .and_then(|l| l.split(':').nth(1))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .map(|mhz| mhz * 1e6)
        .unwrap_or(2.3e9)
}

#[derive(Debug, Clone, Copy)]
pub struct Rate {
    /// Payload bytes per second.
    pub bytes_per_s: f64,
    pub packets_per_s: f64,
    pub cycles_per_byte: f64,
}

impl Rate {
    pub fn mb_s(&self) -> f64 {
        self.bytes_per_s / 1e6
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "MB_s": (self.mb_s() * 10.0).round() / 10.0,
            "Mbit_s": (self.bytes_per_s * 8.0 / 1e6).round(),
            "kpps": (self.packets_per_s / 100.0).round() / 10.0,
            "cycles_per_byte": (self.cycles_per_byte * 100.0).round() / 100.0,
        })
    }
}

/// A workload: one call processes `bytes` payload bytes in `packets` packets.
pub struct Candidate<'a> {
    pub bytes: usize,
    pub packets: usize,
    pub run: Box<dyn FnMut() + 'a>,
}

/// Measures the candidates interleaved for about `budget` in total: slices of ~20 ms each,
/// round robin; each candidate's rate is its best slice.
pub fn compare(budget: Duration, cands: &mut [Candidate<'_>]) -> Vec<Rate> {
    let hz = cpu_hz();
    let slice = Duration::from_millis(20);
    for c in cands.iter_mut() {
        (c.run)(); // warm-up
    }
    let mut best = vec![0f64; cands.len()];
    let start = Instant::now();
    let mut rounds = 0;
    while rounds < 3 || start.elapsed() < budget {
        for (i, c) in cands.iter_mut().enumerate() {
            let t0 = thread_time();
            let mut calls = 0u64;
            while calls == 0 || thread_time() - t0 < slice {
                (c.run)();
                calls += 1;
            }
            let per_s = calls as f64 / (thread_time() - t0).as_secs_f64();
            best[i] = best[i].max(per_s);
        }
        rounds += 1;
    }
    cands
        .iter()
        .zip(best)
        .map(|(c, per_s)| {
            let bytes_per_s = per_s * c.bytes as f64;
            Rate {
                bytes_per_s,
                packets_per_s: per_s * c.packets as f64,
                cycles_per_byte: hz / bytes_per_s,
            }
        })
        .collect()
}
