//! AF_XDP sockets and their UMEM (xsk-rs), behind a safe interface.
//!
//! A worker owns one [`XskSet`]: one UMEM shared by the sockets of every
//! (interface, queue) it serves, so a frame received on the inside socket
//! can leave on the outside socket without a copy. Frames are owned values
//! ([`Packet`]) while user space holds them and disappear into the rings when
//! handed to the kernel (TX or fill), which is what makes the accessors
//! here sound. Completions are recycled into the free list at every
//! [`XskSet::service`] and the fill rings topped up from it, so RX never
//! starves while TX is busy.
//!
//! Also here, because they need `unsafe`: the `aya::Pod` markers of the BPF
//! map value types and a multi-descriptor `poll(2)`.
#![allow(unsafe_code)]

use crate::xdp::maps::{AclRuleRaw, ClearSampleRaw, CounterRaw, LocalAddrRaw};
use std::io;
use std::num::NonZeroU32;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use xsk_rs::config::{BindFlags, FrameSize, LibxdpFlags, QueueSize, SocketConfig, UmemConfig};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

// SAFETY: AclRuleRaw is #[repr(C)], made of integers only, with no padding
// (28 bytes: 4×u32, 4×u16, 2×u8, u16 — checked against the C header by the
// layout tests in xdp::maps), so every bit pattern is a valid value.
unsafe impl aya::Pod for AclRuleRaw {}
// SAFETY: CounterRaw is #[repr(C)], two u64s, no padding; any bits are valid.
unsafe impl aya::Pod for CounterRaw {}
// SAFETY: LocalAddrRaw is #[repr(C)], one u32 (size checked against the C
// header by the layout tests in xdp::maps); any bits are valid.
unsafe impl aya::Pod for LocalAddrRaw {}
// SAFETY: ClearSampleRaw is #[repr(C)]: u64, 2×u32, u8, [u8; 7], 24 bytes
// with no implicit padding (the tail is an explicit byte array; size and
// offsets checked against the C header by the layout tests in xdp::maps);
// any bits are valid.
unsafe impl aya::Pod for ClearSampleRaw {}

/// Settings of one worker's sockets.
#[derive(Debug, Clone, Copy)]
pub struct XskConfig {
    /// UMEM frames per (interface, queue) socket.
    pub frames_per_socket: u32,
    /// RX, TX, fill and completion ring sizes (power of two).
    pub ring_size: u32,
    /// Force copy mode (otherwise the kernel tries zero-copy first).
    pub force_copy: bool,
    /// Bind with XDP_USE_NEED_WAKEUP.
    pub need_wakeup: bool,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            frames_per_socket: 2048,
            ring_size: 1024,
            force_copy: false,
            need_wakeup: true,
        }
    }
}

/// Errors creating the UMEM or a socket.
#[derive(Debug, thiserror::Error)]
pub enum XskError {
    #[error("bad AF_XDP configuration: {0}")]
    Config(String),
    #[error("creating the UMEM: {0}")]
    Umem(String),
    #[error("binding an AF_XDP socket to {ifname} queue {queue}: {err}")]
    Socket {
        ifname: String,
        queue: u32,
        err: String,
    },
}

/// A frame held by user space: received, or taken from the free list.
/// Not `Clone`: handing it to a ring consumes it.
#[derive(Debug)]
pub struct Packet {
    desc: FrameDesc,
    owner: u32,
}

impl Packet {
    /// Length of the packet data.
    pub fn len(&self) -> usize {
        self.desc.lengths().data()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct Port {
    ifname: String,
    queue: u32,
    tx: TxQueue,
    rx: RxQueue,
    fq: FillQueue,
    cq: CompQueue,
    /// Frames the kernel holds in the fill ring.
    in_fill: u32,
    /// Frames the kernel holds for TX (not yet completed).
    in_tx: u32,
}

/// Statistics the kernel keeps per socket.
#[derive(Debug, Clone, Copy, Default)]
pub struct PortStats {
    pub rx_dropped: u64,
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty: u64,
    pub tx_invalid: u64,
    pub tx_ring_empty: u64,
}

static NEXT_OWNER: AtomicU32 = AtomicU32::new(1);

/// One worker's UMEM and the AF_XDP sockets bound to it.
pub struct XskSet {
    id: u32,
    umem: Umem,
    free: Vec<FrameDesc>,
    ports: Vec<Port>,
    scratch: Vec<FrameDesc>,
    fill_target: u32,
    capacity: usize,
    need_wakeup: bool,
}

impl XskSet {
    /// Creates a UMEM and binds one socket per `(interface, queue)`, in order;
    /// port `i` of the set is `bindings[i]`. No XDP program is loaded (our
    /// classifiers are attached separately and steer through the XSKMAP).
    pub fn new(cfg: &XskConfig, bindings: &[(String, u32)]) -> Result<Self, XskError> {
        if bindings.is_empty() {
            return Err(XskError::Config("no interface to bind".into()));
        }
        let cfgerr = |e: &dyn std::fmt::Display| XskError::Config(e.to_string());
        let ring = QueueSize::new(cfg.ring_size).map_err(|e| cfgerr(&e))?;
        let umem_cfg = UmemConfig::builder()
            .frame_size(FrameSize::new(4096).map_err(|e| cfgerr(&e))?)
            .fill_queue_size(ring)
            .comp_queue_size(ring)
            .frame_headroom(0)
            .build()
            .map_err(|e| cfgerr(&e))?;
        let capacity = umem_cfg.mtu() as usize;
        let total = cfg
            .frames_per_socket
            .checked_mul(bindings.len() as u32)
            .and_then(NonZeroU32::new)
            .ok_or_else(|| XskError::Config("frame count".into()))?;
        let (umem, free) =
            Umem::new(umem_cfg, total, false).map_err(|e| XskError::Umem(e.to_string()))?;

        let mut bind = BindFlags::empty();
        if cfg.need_wakeup {
            bind |= BindFlags::XDP_USE_NEED_WAKEUP;
        }
        if cfg.force_copy {
            bind |= BindFlags::XDP_COPY;
        }
        let sock_cfg = SocketConfig::builder()
            .rx_queue_size(ring)
            .tx_queue_size(ring)
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            .bind_flags(bind)
            .build();

        let mut ports = Vec::with_capacity(bindings.len());
        for (ifname, queue) in bindings {
            let sockerr = |err: String| XskError::Socket {
                ifname: ifname.clone(),
                queue: *queue,
                err,
            };
            let iface = ifname
                .parse()
                .map_err(|e: std::ffi::NulError| sockerr(e.to_string()))?;
            // SAFETY: the one requirement of Socket::new is that a socket
            // sharing this UMEM on an (interface, queue) pair that is already
            // bound carries XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD; every socket
            // made here does, so dropping them cannot double-free a program.
            let (tx, rx, rings) = unsafe { Socket::new(sock_cfg, &umem, &iface, *queue) }
                .map_err(|e| sockerr(format!("{e:?}")))?;
            let (fq, cq) = rings.ok_or_else(|| sockerr("pair bound twice in one set".into()))?;
            ports.push(Port {
                ifname: ifname.clone(),
                queue: *queue,
                tx,
                rx,
                fq,
                cq,
                in_fill: 0,
                in_tx: 0,
            });
        }
        let fill_target = (cfg.frames_per_socket / 2).min(cfg.ring_size);
        let mut set = XskSet {
            id: NEXT_OWNER.fetch_add(1, Ordering::Relaxed),
            umem,
            free,
            ports,
            scratch: vec![FrameDesc::default(); cfg.ring_size as usize],
            fill_target,
            capacity,
            need_wakeup: cfg.need_wakeup,
        };
        set.refill();
        Ok(set)
    }

    /// Number of ports (sockets).
    pub fn ports(&self) -> usize {
        self.ports.len()
    }

    /// The socket descriptor of port `i`, to register in an XSKMAP.
    pub fn fd(&self, port: usize) -> RawFd {
        self.ports[port].rx.fd().as_raw_fd()
    }

    /// Interface and queue of port `i`.
    pub fn binding(&self, port: usize) -> (&str, u32) {
        (&self.ports[port].ifname, self.ports[port].queue)
    }

    /// Largest packet a frame holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Frames on the free list.
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// Receives up to `max` packets from port `port` into `out`; returns the
    /// count. Does not block.
    pub fn recv(&mut self, port: usize, out: &mut Vec<Packet>, max: usize) -> usize {
        let max = max.min(self.scratch.len());
        let p = &mut self.ports[port];
        // SAFETY: the descriptors written into `scratch` are the kernel's to
        // hand over: each names a frame of this UMEM that the kernel has
        // released to us; we wrap each in exactly one Packet.
        let n = unsafe { p.rx.consume(&mut self.scratch[..max]) };
        p.in_fill = p.in_fill.saturating_sub(n as u32);
        out.extend(self.scratch[..n].iter().map(|d| Packet {
            desc: *d,
            owner: self.id,
        }));
        n
    }

    /// A free frame with length 0 (for packets built from scratch).
    pub fn alloc(&mut self) -> Option<Packet> {
        let mut desc = self.free.pop()?;
        self.set_len_desc(&mut desc, 0);
        Some(Packet {
            desc,
            owner: self.id,
        })
    }

    fn set_len_desc(&self, desc: &mut FrameDesc, len: usize) {
        // SAFETY: `desc` names a frame of this UMEM that user space owns (it
        // is in the free list or wrapped in a Packet of this set), so the
        // kernel does not touch the frame while we write its length.
        let mut data = unsafe { self.umem.data_mut(desc) };
        data.cursor().set_pos(len);
    }

    /// The packet's bytes.
    pub fn data<'a>(&'a self, p: &'a Packet) -> &'a [u8] {
        if p.owner != self.id {
            return &[];
        }
        // SAFETY: the Packet belongs to this UMEM (owner checked) and is
        // held by user space, so the kernel neither reads nor writes it.
        unsafe { self.umem.data(&p.desc) }.contents()
    }

    /// The packet's bytes, writable.
    pub fn data_mut<'a>(&'a self, p: &'a mut Packet) -> &'a mut [u8] {
        if p.owner != self.id {
            return &mut [];
        }
        // SAFETY: as in `data`; `&mut Packet` makes this the only view.
        unsafe { self.umem.data_mut(&mut p.desc) }.contents_mut_owned()
    }

    /// Sets the packet length to `len` (at most [`capacity`](Self::capacity))
    /// and returns the whole writable frame: bytes past the old length are
    /// whatever the frame held before.
    pub fn resize<'a>(&'a self, p: &'a mut Packet, len: usize) -> Option<&'a mut [u8]> {
        if p.owner != self.id || len > self.capacity {
            return None;
        }
        // SAFETY: as in `data_mut`.
        let mut data = unsafe { self.umem.data_mut(&mut p.desc) };
        data.cursor().set_pos(len);
        Some(data.contents_mut_owned())
    }

    /// Returns a packet's frame to the free list (a drop).
    pub fn release(&mut self, p: Packet) {
        if p.owner == self.id {
            self.free.push(p.desc);
        }
    }

    /// Queues packets for transmission on `port`; those the TX ring has no
    /// room for are released and their number returned as the second value.
    pub fn send(&mut self, port: usize, pkts: &mut Vec<Packet>) -> (usize, usize) {
        if pkts.is_empty() {
            return (0, 0);
        }
        self.scratch.clear();
        self.scratch
            .extend(pkts.iter().filter(|p| p.owner == self.id).map(|p| p.desc));
        let p = &mut self.ports[port];
        // SAFETY: every descriptor names a frame of this UMEM that user space
        // owned (owner checked); the Packets are dropped below, so nothing
        // touches these frames again until the completion ring returns them.
        let sent = unsafe { p.tx.produce(&self.scratch) };
        p.in_tx += sent as u32;
        if sent > 0 && (!self.need_wakeup || p.tx.needs_wakeup()) {
            let _ = p.tx.wakeup();
        }
        let rejected = self.scratch.len() - sent;
        self.free.extend_from_slice(&self.scratch[sent..]);
        let foreign = pkts.len() - self.scratch.len();
        pkts.clear();
        let len = self.scratch.capacity();
        self.scratch.resize(len, FrameDesc::default());
        (sent, rejected + foreign)
    }

    /// Recycles TX completions into the free list, tops up every fill ring and
    /// kicks the kernel where it asked for a wake-up. Call once per loop.
    pub fn service(&mut self) {
        for i in 0..self.ports.len() {
            let p = &mut self.ports[i];
            if p.in_tx > 0 {
                // SAFETY: completion descriptors name frames of this UMEM the
                // kernel has finished sending; they go to the free list once.
                let n = unsafe { p.cq.consume(&mut self.scratch) };
                p.in_tx = p.in_tx.saturating_sub(n as u32);
                self.free.extend_from_slice(&self.scratch[..n]);
                if p.in_tx > 0 && (!self.need_wakeup || p.tx.needs_wakeup()) {
                    let _ = p.tx.wakeup();
                }
            }
        }
        self.refill();
    }

    fn refill(&mut self) {
        for p in self.ports.iter_mut() {
            let want = self.fill_target.saturating_sub(p.in_fill) as usize;
            let n = want.min(self.free.len());
            if n > 0 {
                let start = self.free.len() - n;
                // SAFETY: these frames come from the free list, so user space
                // owned them and drops them here; the kernel returns them
                // through the RX ring.
                let done = unsafe { p.fq.produce(&self.free[start..]) };
                if done > 0 {
                    self.free.truncate(self.free.len() - done);
                    p.in_fill += done as u32;
                }
            }
            if p.fq.needs_wakeup() {
                let fd = p.rx.fd_mut();
                let _ = p.fq.wakeup(fd, 0);
            }
        }
    }

    /// Whether any fill ring asks for a wake-up (the driver went to sleep).
    pub fn needs_wakeup(&self) -> bool {
        self.ports.iter().any(|p| p.fq.needs_wakeup())
    }

    /// Blocks until a socket has packets to read or `timeout_ms` passes.
    pub fn wait(&mut self, timeout_ms: i32) -> io::Result<bool> {
        let fds: Vec<RawFd> = (0..self.ports.len()).map(|i| self.fd(i)).collect();
        poll_readable(&fds, timeout_ms)
    }

    /// Kernel statistics of port `port`.
    pub fn stats(&self, port: usize) -> io::Result<PortStats> {
        let s = self.ports[port].rx.fd().xdp_statistics()?;
        Ok(PortStats {
            rx_dropped: s.rx_dropped(),
            rx_ring_full: s.rx_ring_full(),
            rx_fill_ring_empty: s.rx_fill_ring_empty_descs(),
            tx_invalid: s.tx_invalid_descs(),
            tx_ring_empty: s.tx_ring_empty_descs(),
        })
    }
}

trait ContentsMutOwned<'a> {
    fn contents_mut_owned(self) -> &'a mut [u8];
}

impl<'a> ContentsMutOwned<'a> for xsk_rs::umem::frame::DataMut<'a> {
    fn contents_mut_owned(mut self) -> &'a mut [u8] {
        let len = self.contents().len();
        let ptr = self.contents_mut().as_mut_ptr();
        // SAFETY: `DataMut<'a>` holds a `&'a mut [u8]` over the frame's data
        // segment, at least `len` bytes from `ptr`; consuming it hands that
        // exclusive borrow on for the same lifetime.
        unsafe { std::slice::from_raw_parts_mut(ptr, len) }
    }
}

/// `poll(2)` for readability on several descriptors; true if any is ready.
pub fn poll_readable(fds: &[RawFd], timeout_ms: i32) -> io::Result<bool> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `pfds` is a valid, writable array of `pfds.len()` pollfd structs
    // that lives across the call.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(rc > 0)
}

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Installs SIGINT/SIGTERM handlers that only set a flag (async-signal-safe)
/// and returns the flag, for the dataplane's main loop to stop its workers
/// and detach cleanly.
pub fn stop_on_signals() -> &'static std::sync::atomic::AtomicBool {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let handler: extern "C" fn(libc::c_int) = on_stop_signal;
        // SAFETY: the handler only stores into an atomic, which is
        // async-signal-safe; `signal` is given a valid function pointer.
        unsafe {
            libc::signal(sig, handler as libc::sighandler_t);
        }
    }
    &STOP
}
