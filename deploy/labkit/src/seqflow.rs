//! The reliability suite's load driver: a paced UDP stream with sequence numbers from one
//! lab node to another and back, counted to the packet.
//!
//! The sender (on hostA) sends datagrams carrying `flow id | sequence number | send time`
//! at a fixed rate; the echo (on hostB) counts what arrives and sends each datagram back to
//! where it came from; the sender counts the echoes. Each side keeps a [`SeqTracker`]: unique
//! arrivals, duplicates, arrivals behind the highest sequence number seen (reordered), and
//! the longest silence between two arrivals and when it began. Forward loss is what the
//! sender sent minus what the echo received once; return loss is what the echo sent back
//! minus what the sender received once.
//!
//! Both ends run as `espgw-seqflow` (this crate's binary) inside the lab's namespaces;
//! [`SeqFlow`] starts them as tracked [`LabProcess`]es and collects their JSON reports.

use crate::lab::{Lab, LabProcess, Node};
use crate::{Error, Result};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// First four bytes of every datagram of the stream.
pub const MAGIC: [u8; 4] = *b"ESQ1";
/// Bytes of the header: magic, flow id (u32), sequence number (u64), send time in µs
/// since the stream began (u64), all big-endian.
pub const HEADER_LEN: usize = 24;

/// One datagram's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqHeader {
    pub flow: u32,
    pub seq: u64,
    pub sent_us: u64,
}

/// Why bytes are not a stream datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SeqHeaderError {
    #[error("datagram of {0} bytes, shorter than the {HEADER_LEN}-byte header")]
    Truncated(usize),
    #[error("not a sequence-stream datagram (magic)")]
    BadMagic,
}

impl SeqHeader {
    /// Parses the header at the start of `b`.
    pub fn parse(b: &[u8]) -> std::result::Result<SeqHeader, SeqHeaderError> {
        if b.len() < HEADER_LEN {
            return Err(SeqHeaderError::Truncated(b.len()));
        }
        if b[0..4] != MAGIC {
            return Err(SeqHeaderError::BadMagic);
        }
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| (u64::from(u32_at(i)) << 32) | u64::from(u32_at(i + 4));
        Ok(SeqHeader {
            flow: u32_at(4),
            seq: u64_at(8),
            sent_us: u64_at(16),
        })
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of `b` (which must be that
    /// long).
    pub fn emit(&self, b: &mut [u8]) {
        b[0..4].copy_from_slice(&MAGIC);
        b[4..8].copy_from_slice(&self.flow.to_be_bytes());
        b[8..16].copy_from_slice(&self.seq.to_be_bytes());
        b[16..24].copy_from_slice(&self.sent_us.to_be_bytes());
    }
}

/// What arrived of one direction of a stream.
#[derive(Clone, Debug, Default)]
pub struct SeqTracker {
    seen: Vec<u64>,
    /// Distinct sequence numbers received.
    pub unique: u64,
    /// Arrivals of a sequence number already received.
    pub duplicates: u64,
    /// First arrivals of a sequence number below the highest one received before.
    pub reordered: u64,
    /// Datagrams that were not of this flow (other flow id, bad magic, truncated).
    pub foreign: u64,
    max_seq: Option<u64>,
    first: Option<Instant>,
    last: Option<Instant>,
    /// The longest time between two consecutive arrivals.
    pub longest_gap: Duration,
    /// When the longest gap began, from the first arrival.
    pub longest_gap_at: Duration,
}

impl SeqTracker {
    /// Counts one arrival of `seq` at `now`.
    pub fn record(&mut self, seq: u64, now: Instant) {
        let (w, bit) = ((seq / 64) as usize, seq % 64);
        if w >= self.seen.len() {
            self.seen.resize(w + 1, 0);
        }
        if self.seen[w] & (1 << bit) != 0 {
            self.duplicates += 1;
        } else {
            self.seen[w] |= 1 << bit;
            self.unique += 1;
            if self.max_seq.is_some_and(|m| seq < m) {
                self.reordered += 1;
            }
            self.max_seq = Some(self.max_seq.map_or(seq, |m| m.max(seq)));
        }
        let first = *self.first.get_or_insert(now);
        if let Some(last) = self.last {
            let gap = now.saturating_duration_since(last);
            if gap > self.longest_gap {
                self.longest_gap = gap;
                self.longest_gap_at = last.saturating_duration_since(first);
            }
        }
        self.last = Some(now);
    }

    /// Whether `seq` has arrived.
    pub fn has(&self, seq: u64) -> bool {
        self.seen
            .get((seq / 64) as usize)
            .is_some_and(|w| w & (1 << (seq % 64)) != 0)
    }

    /// Sequence numbers below `sent` that never arrived, in order (at most `limit`).
    pub fn missing(&self, sent: u64, limit: usize) -> Vec<u64> {
        (0..sent).filter(|&s| !self.has(s)).take(limit).collect()
    }

    /// The counts as JSON (the binary's report format).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "unique": self.unique,
            "duplicates": self.duplicates,
            "reordered": self.reordered,
            "foreign": self.foreign,
            "max_seq": self.max_seq,
            "longest_gap_ms": self.longest_gap.as_secs_f64() * 1e3,
            "longest_gap_at_ms": self.longest_gap_at.as_secs_f64() * 1e3,
        })
    }
}

/// One direction's counts, read back from a report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DirectionCounts {
    pub sent: u64,
    pub received: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub longest_gap_ms: f64,
    pub longest_gap_at_ms: f64,
}

impl DirectionCounts {
    /// Sent but never received.
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }
}

/// Both directions of a finished stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FlowReport {
    /// hostA → hostB (counted by the echo).
    pub forward: DirectionCounts,
    /// hostB → hostA (counted by the sender).
    pub back: DirectionCounts,
    /// sendto() calls that failed on the sender (not counted as sent).
    pub send_errors: u64,
    /// The rate the sender achieved, packets per second.
    pub achieved_pps: f64,
    /// First forward sequence numbers that never arrived (up to 20).
    pub missing_forward: Vec<u64>,
}

impl FlowReport {
    /// Packets lost in both directions.
    pub fn lost(&self) -> u64 {
        self.forward.lost() + self.back.lost()
    }

    /// Duplicates in both directions.
    pub fn duplicates(&self) -> u64 {
        self.forward.duplicates + self.back.duplicates
    }

    /// `sent/received/lost/dup/reordered/gap` for both directions, for the scenario line.
    pub fn line(&self) -> String {
        let d = |c: &DirectionCounts| {
            format!(
                "sent {} recv {} lost {} dup {} reord {} gap {:.0}ms@{:.1}s",
                c.sent,
                c.received,
                c.lost(),
                c.duplicates,
                c.reordered,
                c.longest_gap_ms,
                c.longest_gap_at_ms / 1e3
            )
        };
        format!(
            "A->B [{}] B->A [{}] ({:.0} pps)",
            d(&self.forward),
            d(&self.back),
            self.achieved_pps
        )
    }

    /// Builds the report from the sender's and the echo's JSON.
    pub fn from_json(sender: &serde_json::Value, echo: &serde_json::Value) -> FlowReport {
        let u = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0);
        let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(0.0);
        let counts = |sent: u64, t: &serde_json::Value| DirectionCounts {
            sent,
            received: u(t, "unique"),
            duplicates: u(t, "duplicates"),
            reordered: u(t, "reordered"),
            longest_gap_ms: f(t, "longest_gap_ms"),
            longest_gap_at_ms: f(t, "longest_gap_at_ms"),
        };
        FlowReport {
            forward: counts(u(sender, "sent"), &echo["received"]),
            back: counts(u(echo, "echoed"), &sender["received"]),
            send_errors: u(sender, "send_errors"),
            achieved_pps: f(sender, "achieved_pps"),
            missing_forward: echo["missing"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
                .unwrap_or_default(),
        }
    }
}

/// How the sender runs.
#[derive(Clone, Debug)]
pub struct SendSpec {
    pub to: SocketAddr,
    pub flow: u32,
    pub pps: u32,
    pub duration: Duration,
    /// UDP payload bytes (at least [`HEADER_LEN`]).
    pub size: usize,
    /// How long to keep receiving echoes after the last send.
    pub linger: Duration,
}

fn write_report(path: &Path, v: &serde_json::Value) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, v.to_string()).map_err(|e| Error::io("writing report", e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("renaming report", e))
}

/// The sender: paces `spec.pps` datagrams a second for `spec.duration`, counts echoes, and
/// writes its report (JSON) to `report`.
pub fn run_sender(spec: &SendSpec, report: &Path) -> Result<()> {
    let sock = UdpSocket::bind("0.0.0.0:0").map_err(|e| Error::io("bind", e))?;
    sock.set_nonblocking(true)
        .map_err(|e| Error::io("nonblocking", e))?;
    let mut buf = vec![0u8; spec.size.max(HEADER_LEN)];
    let mut rbuf = vec![0u8; 65536];
    let mut back = SeqTracker::default();
    let (mut sent, mut errors) = (0u64, 0u64);
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / f64::from(spec.pps.max(1)));
    let mut seq = 0u64;
    let mut recv_all = |back: &mut SeqTracker| {
        while let Ok((n, _)) = sock.recv_from(&mut rbuf) {
            match SeqHeader::parse(&rbuf[..n]) {
                Ok(h) if h.flow == spec.flow => back.record(h.seq, Instant::now()),
                _ => back.foreign += 1,
            }
        }
    };
    loop {
        let now = Instant::now();
        let elapsed = now - start;
        if elapsed >= spec.duration {
            break;
        }
        // Send what is due (catching up after a stall: the schedule, not the sleeps,
        // decides how many datagrams go out).
        while interval * (seq as u32) <= elapsed && seq < u64::from(u32::MAX) {
            let h = SeqHeader {
                flow: spec.flow,
                seq,
                sent_us: elapsed.as_micros() as u64,
            };
            h.emit(&mut buf);
            match sock.send_to(&buf, spec.to) {
                Ok(_) => sent += 1,
                Err(_) => errors += 1,
            }
            seq += 1;
        }
        recv_all(&mut back);
        let next = interval * (seq as u32);
        let wait = next.saturating_sub(start.elapsed());
        std::thread::sleep(wait.min(Duration::from_millis(1)));
    }
    let send_time = start.elapsed();
    let end = Instant::now() + spec.linger;
    while Instant::now() < end {
        recv_all(&mut back);
        std::thread::sleep(Duration::from_millis(1));
    }
    let v = serde_json::json!({
        "sent": sent,
        "send_errors": errors,
        "achieved_pps": sent as f64 / send_time.as_secs_f64(),
        "received": back.to_json(),
    });
    write_report(report, &v)
}

/// The echo: counts what arrives on `port` and sends each datagram back to its source,
/// until nothing has arrived for `idle_exit` (after the first datagram) or `max` has
/// passed; then writes its report (JSON) to `report`.
pub fn run_echo(port: u16, idle_exit: Duration, max: Duration, report: &Path) -> Result<()> {
    run_receiver(port, idle_exit, max, report, true)
}

/// The receiving end: as [`run_echo`], but sends the datagrams back only if `echo`; without
/// it the stream is one way (the other direction of the tunnel stays idle).
pub fn run_receiver(
    port: u16,
    idle_exit: Duration,
    max: Duration,
    report: &Path,
    echo: bool,
) -> Result<()> {
    let sock = UdpSocket::bind(("0.0.0.0", port)).map_err(|e| Error::io("bind", e))?;
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| Error::io("timeout", e))?;
    // The file's existence tells the starter the socket is bound.
    write_report(report, &serde_json::json!({"listening": true}))?;
    let mut rx = SeqTracker::default();
    let mut buf = vec![0u8; 65536];
    let (mut echoed, mut echo_errors) = (0u64, 0u64);
    let mut sent_max = 0u64;
    let start = Instant::now();
    let mut last: Option<Instant> = None;
    loop {
        if start.elapsed() > max || last.is_some_and(|l| l.elapsed() > idle_exit) {
            break;
        }
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let now = Instant::now();
        last = Some(now);
        match SeqHeader::parse(&buf[..n]) {
            Ok(h) => {
                rx.record(h.seq, now);
                sent_max = sent_max.max(h.seq + 1);
                if !echo {
                    continue;
                }
                match sock.send_to(&buf[..n], from) {
                    Ok(_) => echoed += 1,
                    Err(_) => echo_errors += 1,
                }
            }
            Err(_) => rx.foreign += 1,
        }
    }
    let v = serde_json::json!({
        "received": rx.to_json(),
        "echoed": echoed,
        "echo_errors": echo_errors,
        "missing": rx.missing(sent_max, 20),
    });
    write_report(report, &v)
}

/// How long the receiver of [`SeqFlow::start`] waits for the next datagram before it ends.
pub const IDLE_EXIT: Duration = Duration::from_secs(3);

/// A stream running in a lab: the echo on `to`, the sender on `from`.
pub struct SeqFlow {
    sender: LabProcess,
    echo: LabProcess,
    sender_report: PathBuf,
    echo_report: PathBuf,
    duration: Duration,
}

/// How a [`SeqFlow`] runs.
#[derive(Clone, Debug)]
pub struct FlowSpec {
    pub pps: u32,
    pub duration: Duration,
    pub size: usize,
    pub port: u16,
}

impl Default for FlowSpec {
    fn default() -> Self {
        FlowSpec {
            pps: 500,
            duration: Duration::from_secs(10),
            size: 200,
            port: 47999,
        }
    }
}

impl SeqFlow {
    /// Starts the echo on `to` (listening on `spec.port`), then the sender on `from`
    /// towards `to_ip`. `bin` is the `espgw-seqflow` program.
    pub fn start(
        lab: &Lab,
        bin: &Path,
        from: Node,
        to: Node,
        to_ip: &str,
        spec: &FlowSpec,
    ) -> Result<SeqFlow> {
        SeqFlow::start_with(lab, bin, from, to, to_ip, spec, true, IDLE_EXIT)
    }

    /// The general form: without `echo`, `to` only counts (`--no-echo`), so traffic flows
    /// `from` → `to` and the other direction stays idle (`back` counts nothing); the
    /// receiver gives up after `idle_exit` without a datagram ([`IDLE_EXIT`] by default:
    /// make it longer than any outage a scenario causes, or the receiver is gone when the
    /// tunnel comes back).
    #[allow(clippy::too_many_arguments)]
    pub fn start_with(
        lab: &Lab,
        bin: &Path,
        from: Node,
        to: Node,
        to_ip: &str,
        spec: &FlowSpec,
        echo: bool,
        idle_exit: Duration,
    ) -> Result<SeqFlow> {
        let n = std::process::id() ^ spec.port as u32;
        let dir = lab.dir();
        let echo_report = dir.join(format!("seqflow-echo-{n}.json"));
        let sender_report = dir.join(format!("seqflow-send-{n}.json"));
        let _ = std::fs::remove_file(&echo_report);
        let _ = std::fs::remove_file(&sender_report);
        let b = bin.to_string_lossy().into_owned();
        let (port, pps) = (spec.port.to_string(), spec.pps.to_string());
        let secs = format!("{:.3}", spec.duration.as_secs_f64());
        let idle = format!("{:.3}", idle_exit.as_secs_f64());
        let max = format!("{:.3}", spec.duration.as_secs_f64() + 30.0);
        let size = spec.size.to_string();
        let er = echo_report.to_string_lossy().into_owned();
        let sr = sender_report.to_string_lossy().into_owned();
        let mut args = vec![
            b.as_str(),
            "echo",
            "--port",
            &port,
            "--idle-exit",
            &idle,
            "--max",
            &max,
            "--report",
            &er,
        ];
        if !echo {
            args.push("--no-echo");
        }
        let mut echo = lab.spawn(to, &args)?;
        let t0 = Instant::now();
        while !echo_report.exists() {
            if !echo.is_running() || t0.elapsed() > Duration::from_secs(10) {
                return Err(echo.died_at_start("seqflow echo", &[]));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let to_addr = format!("{to_ip}:{port}");
        let sender = lab.spawn(
            from,
            &[
                &b, "send", "--to", &to_addr, "--pps", &pps, "--secs", &secs, "--size", &size,
                "--report", &sr,
            ],
        )?;
        Ok(SeqFlow {
            sender,
            echo,
            sender_report,
            echo_report,
            duration: spec.duration,
        })
    }

    /// Waits for both ends to finish and reads their reports.
    pub fn wait(mut self) -> Result<FlowReport> {
        let limit = self.duration + Duration::from_secs(40);
        for (p, what) in [(&mut self.sender, "sender"), (&mut self.echo, "echo")] {
            if p.wait_timeout(limit)?.is_none() {
                return Err(Error::Invalid(format!("seqflow {what} did not finish")));
            }
        }
        let read = |p: &Path| -> Result<serde_json::Value> {
            let t = std::fs::read_to_string(p).map_err(|e| Error::io("seqflow report", e))?;
            serde_json::from_str(&t)
                .map_err(|e| Error::Invalid(format!("seqflow report {}: {e}", p.display())))
        };
        let s = read(&self.sender_report)?;
        let e = read(&self.echo_report)?;
        Ok(FlowReport::from_json(&s, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_errors() {
        let h = SeqHeader {
            flow: 7,
            seq: 0x0102_0304_0506_0708,
            sent_us: 99,
        };
        let mut b = [0u8; 40];
        h.emit(&mut b);
        assert_eq!(SeqHeader::parse(&b), Ok(h));
        assert_eq!(
            SeqHeader::parse(&b[..10]),
            Err(SeqHeaderError::Truncated(10))
        );
        b[0] = b'X';
        assert_eq!(SeqHeader::parse(&b), Err(SeqHeaderError::BadMagic));
    }

    #[test]
    fn tracker_counts_loss_duplicates_reordering_and_gaps() {
        let t0 = Instant::now();
        let mut t = SeqTracker::default();
        let ms = |n| t0 + Duration::from_millis(n);
        for (seq, at) in [(0, 0), (1, 1), (3, 2), (2, 3), (3, 4), (6, 50), (7, 51)] {
            t.record(seq, ms(at));
        }
        assert_eq!(t.unique, 6);
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.reordered, 1);
        assert_eq!(t.longest_gap, Duration::from_millis(46));
        assert_eq!(t.longest_gap_at, Duration::from_millis(4));
        assert_eq!(t.missing(8, 10), vec![4, 5]);
        assert!(!t.has(200) && t.missing(3, 10).is_empty());
    }

    #[test]
    fn report_from_both_ends() {
        let s = serde_json::json!({"sent": 100, "send_errors": 1, "achieved_pps": 50.0,
            "received": {"unique": 97, "duplicates": 2, "reordered": 0}});
        let e = serde_json::json!({"echoed": 98, "missing": [5, 9],
            "received": {"unique": 98, "duplicates": 0, "reordered": 3, "longest_gap_ms": 12.5}});
        let r = FlowReport::from_json(&s, &e);
        assert_eq!(r.forward.lost(), 2);
        assert_eq!(r.back.lost(), 1);
        assert_eq!(r.lost(), 3);
        assert_eq!(r.duplicates(), 2);
        assert_eq!(r.forward.reordered, 3);
        assert_eq!(r.missing_forward, vec![5, 9]);
        assert!(r.line().contains("lost 2"), "{}", r.line());
    }

    #[test]
    fn loopback_stream_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (er, sr) = (dir.path().join("e.json"), dir.path().join("s.json"));
        let port = 40000 + (std::process::id() % 20000) as u16;
        let er2 = er.clone();
        let echo = std::thread::spawn(move || {
            run_echo(
                port,
                Duration::from_millis(500),
                Duration::from_secs(20),
                &er2,
            )
        });
        while !er.exists() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let spec = SendSpec {
            to: format!("127.0.0.1:{port}").parse().unwrap(),
            flow: 1,
            pps: 1000,
            duration: Duration::from_millis(300),
            size: 64,
            linger: Duration::from_millis(200),
        };
        run_sender(&spec, &sr).unwrap();
        echo.join().unwrap().unwrap();
        let rd = |p: &Path| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        let r = FlowReport::from_json(&rd(&sr), &rd(&er));
        assert!(r.forward.sent >= 250, "{}", r.line());
        assert_eq!(r.lost(), 0, "{}", r.line());
        assert_eq!(r.duplicates(), 0, "{}", r.line());
    }
}
