//! The UDP/timer driver around the sans-IO [`Endpoint`]: two UDP sockets (500 and 4500 on
//! the gateway's address) driven by tokio readiness and read/written with quinn-udp
//! (recvmmsg/sendmsg; coalesced GRO receives are split by their stride), one timer, and a
//! wake-up for commands from the control socket.
//!
//! Everything protocol-related happens in the endpoint; this file only moves datagrams in
//! and out, fires `handle_timeout` at `poll_timeout`, and hands events, debug lines and
//! system messages to
//! a [`DriverSink`].

use crate::ike::{DebugLine, Endpoint, Event, SyslogMessage};
use std::io::IoSliceMut;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::Notify;

/// One UDP socket: tokio for readiness, quinn-udp for the system calls.
struct Sock {
    io: UdpSocket,
    state: quinn_udp::UdpSocketState,
}

impl Sock {
    fn new(io: UdpSocket) -> std::io::Result<Sock> {
        let state = quinn_udp::UdpSocketState::new((&io).into())?;
        Ok(Sock { io, state })
    }

    /// Waits for one receive; returns (bytes, source, segment stride).
    async fn recv(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr, usize)> {
        loop {
            self.io.readable().await?;
            let mut meta = [quinn_udp::RecvMeta::default()];
            let r = self.io.try_io(Interest::READABLE, || {
                self.state
                    .recv((&self.io).into(), &mut [IoSliceMut::new(buf)], &mut meta)
            });
            match r {
                Ok(n) if n > 0 => return Ok((meta[0].len, meta[0].addr, meta[0].stride.max(1))),
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// One receive if a datagram is queued, without waiting.
    fn try_recv(&self, buf: &mut [u8]) -> Option<(usize, SocketAddr, usize)> {
        let mut meta = [quinn_udp::RecvMeta::default()];
        let r = self.io.try_io(Interest::READABLE, || {
            self.state
                .recv((&self.io).into(), &mut [IoSliceMut::new(buf)], &mut meta)
        });
        match r {
            Ok(n) if n > 0 => Some((meta[0].len, meta[0].addr, meta[0].stride.max(1))),
            _ => None,
        }
    }

    fn try_send(&self, to: SocketAddr, data: &[u8]) -> std::io::Result<()> {
        let t = quinn_udp::Transmit {
            destination: to,
            ecn: None,
            contents: data,
            segment_size: None,
            src_ip: None,
        };
        // Straight to sendmsg, not through tokio's `try_io(WRITABLE)`: a fresh socket has
        // no cached readiness until the reactor has run once, so the daemon's first
        // datagrams (an Easy VPN `connect auto` AM1 at start) came back WouldBlock and
        // were lost until the retransmission ~10 s later. Nothing awaits writability, so
        // there is no readiness to keep; a really full send buffer is still WouldBlock.
        self.state.try_send((&self.io).into(), &t)
    }
}

/// Where the driver delivers what the endpoint produced.
pub trait DriverSink: Send {
    /// An event (SA up/down, failure); called with the endpoint unlocked.
    fn event(&mut self, ev: Event);
    /// A debug line (already filtered by the endpoint's debug switches).
    fn debug(&mut self, line: DebugLine);
    /// A system message (`%CRYPTO-…`), whatever the debug switches say.
    fn syslog(&mut self, m: SyslogMessage);
}

/// The shared endpoint plus the wake-up the control socket uses after changing it.
#[derive(Clone)]
pub struct Shared {
    pub endpoint: Arc<Mutex<Endpoint>>,
    pub wake: Arc<Notify>,
}

impl Shared {
    pub fn new(ep: Endpoint) -> Shared {
        Shared {
            endpoint: Arc::new(Mutex::new(ep)),
            wake: Arc::new(Notify::new()),
        }
    }
    /// Runs `f` on the endpoint, then wakes the driver so queued output goes out.
    pub fn with<R>(&self, f: impl FnOnce(&mut Endpoint, Instant) -> R) -> R {
        let r = {
            let mut ep = self.endpoint.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut ep, Instant::now())
        };
        self.wake.notify_one();
        r
    }
}

/// The driver: owns the sockets.
pub struct Driver {
    shared: Shared,
    s500: Sock,
    s4500: Sock,
    l500: SocketAddr,
    l4500: SocketAddr,
}

/// Datagrams one wake-up reads from a socket at most (then timers and the other socket
/// get their turn).
const RX_BATCH: usize = 64;

/// Counters the driver keeps (send failures).
#[derive(Debug, Default, Clone, Copy)]
pub struct DriverStats {
    pub rx: u64,
    pub tx: u64,
    pub tx_errors: u64,
    /// When a send failure was last logged (at most one line a second; the count is exact).
    tx_error_logged: Option<Instant>,
}

impl Driver {
    /// Binds UDP 500 and 4500 on `addr`.
    pub async fn bind(shared: Shared, addr: IpAddr) -> std::io::Result<Driver> {
        Driver::bind_pair(
            shared,
            SocketAddr::new(addr, 500),
            SocketAddr::new(addr, 4500),
        )
        .await
    }

    /// Binds to explicit local addresses (tests use unprivileged ports).
    pub async fn bind_pair(
        shared: Shared,
        a500: SocketAddr,
        a4500: SocketAddr,
    ) -> std::io::Result<Driver> {
        let s500 = UdpSocket::bind(a500).await?;
        let s4500 = UdpSocket::bind(a4500).await?;
        let (l500, l4500) = (s500.local_addr()?, s4500.local_addr()?);
        Ok(Driver {
            shared,
            l500,
            l4500,
            s500: Sock::new(s500)?,
            s4500: Sock::new(s4500)?,
        })
    }

    fn flush(&self, sink: &mut dyn DriverSink, stats: &mut DriverStats) {
        let (tx, evs, dbg, logs) = {
            let mut ep = self
                .shared
                .endpoint
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let mut tx = Vec::new();
            while let Some(t) = ep.poll_transmit() {
                tx.push(t);
            }
            let mut evs = Vec::new();
            while let Some(e) = ep.poll_event() {
                evs.push(e);
            }
            let mut dbg = Vec::new();
            while let Some(d) = ep.poll_debug() {
                dbg.push(d);
            }
            let mut logs = Vec::new();
            while let Some(m) = ep.poll_syslog() {
                logs.push(m);
            }
            (tx, evs, dbg, logs)
        };
        for d in dbg {
            sink.debug(d);
        }
        for m in logs {
            sink.syslog(m);
        }
        for t in tx {
            // The endpoint speaks in logical ports 500/4500; map them to our sockets.
            let sock = if t.local.port() == 4500 {
                &self.s4500
            } else {
                &self.s500
            };
            match sock.try_send(t.remote, &t.data) {
                Ok(_) => stats.tx += 1,
                Err(e) => {
                    stats.tx_errors += 1;
                    let now = Instant::now();
                    if stats
                        .tx_error_logged
                        .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
                    {
                        stats.tx_error_logged = Some(now);
                        eprintln!(
                            "espgw-control: send to {} failed: {e} ({} send failures so far)",
                            t.remote, stats.tx_errors
                        );
                    }
                }
            }
        }
        for e in evs {
            sink.event(e);
        }
    }

    /// Hands each datagram of a (possibly GRO-coalesced) receive to the endpoint.
    fn deliver(
        &self,
        local: SocketAddr,
        from: SocketAddr,
        data: &[u8],
        stride: usize,
        stats: &mut DriverStats,
    ) {
        let mut ep = self
            .shared
            .endpoint
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for d in data.chunks(stride) {
            stats.rx += 1;
            ep.handle_datagram(Instant::now(), local, from, d);
        }
    }

    /// After a wake-up, the datagrams already queued on `sock` (up to [`RX_BATCH`]), so
    /// that a flood pays the loop's per-wake costs (flush, the endpoint's next timeout,
    /// which is linear in its SAs) once per batch, not once per datagram; otherwise the
    /// kernel's receive buffer overflows and drops the real peer's messages with the flood.
    fn drain(&self, sock: &Sock, local: SocketAddr, buf: &mut [u8], stats: &mut DriverStats) {
        for _ in 1..RX_BATCH {
            let Some((n, from, stride)) = sock.try_recv(buf) else {
                return;
            };
            self.deliver(local, from, &buf[..n], stride, stats);
        }
    }

    /// Runs until `stop` is notified.
    pub async fn run(self, mut sink: Box<dyn DriverSink>, stop: Arc<Notify>) -> DriverStats {
        let mut stats = DriverStats::default();
        let mut b1 = vec![0u8; 65536];
        let mut b2 = vec![0u8; 65536];
        // Logical local addresses the endpoint sees (ports 500 and 4500 even when tests
        // bind elsewhere).
        let ip = self.l500.ip();
        let (log500, log4500) = (
            SocketAddr::new(ip, 500),
            SocketAddr::new(self.l4500.ip(), 4500),
        );
        loop {
            self.flush(&mut *sink, &mut stats);
            let deadline = {
                let ep = self
                    .shared
                    .endpoint
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                ep.poll_timeout()
            };
            let sleep = match deadline {
                Some(t) => tokio::time::Instant::from_std(t),
                None => tokio::time::Instant::now() + Duration::from_secs(3600),
            };
            tokio::select! {
                r = self.s500.recv(&mut b1) => {
                    if let Ok((n, from, stride)) = r {
                        self.deliver(log500, from, &b1[..n], stride, &mut stats);
                        self.drain(&self.s500, log500, &mut b1, &mut stats);
                    }
                }
                r = self.s4500.recv(&mut b2) => {
                    if let Ok((n, from, stride)) = r {
                        self.deliver(log4500, from, &b2[..n], stride, &mut stats);
                        self.drain(&self.s4500, log4500, &mut b2, &mut stats);
                    }
                }
                _ = tokio::time::sleep_until(sleep) => {
                    self.shared.endpoint.lock().unwrap_or_else(|e| e.into_inner()).handle_timeout(Instant::now());
                }
                _ = self.shared.wake.notified() => {}
                _ = stop.notified() => break,
            }
        }
        self.flush(&mut *sink, &mut stats);
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram sent on a socket the reactor has not polled yet (the daemon's first
    /// transmit at start) leaves at once.
    #[tokio::test]
    async fn first_send_on_a_fresh_socket_is_not_lost() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tx = Sock::new(UdpSocket::bind("127.0.0.1:0").await.unwrap()).unwrap();
        let to = rx.local_addr().unwrap();
        tx.try_send(to, b"AM1").expect("first send");
        let mut buf = [0u8; 16];
        let (n, _) = tokio::time::timeout(Duration::from_secs(2), rx.recv_from(&mut buf))
            .await
            .expect("datagram arrives")
            .unwrap();
        assert_eq!(&buf[..n], b"AM1");
    }
}
