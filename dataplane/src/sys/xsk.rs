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
//! A packet may start anywhere in its frame: every frame keeps
//! [`FRAME_HEADROOM`] bytes (plus the kernel's XDP headroom) in front of a
//! received packet and the rest of the frame behind it, so ESP grows a
//! packet toward the front (encapsulation) or strips it from the front
//! (decapsulation) in place and the descriptor handed to TX names where the
//! packet now starts ([`XskSet::frame_mut`], [`Packet::set_bounds`]).
//! xsk-rs writes TX descriptors only at a frame's fixed data offset, so the
//! TX rings are produced here ([`TxRing`]), over a second mapping of the
//! kernel's ring.
//!
//! Also here, because they need `unsafe`: the `aya::Pod` markers of the BPF
//! map value types and a multi-descriptor `poll(2)`.
#![allow(unsafe_code)]

use crate::xdp::maps::{
    ClearSampleRaw, ClsCandRaw, ClsCellRaw, ClsConfigRaw, ClsDstRaw, ClsKeyData, CounterRaw,
    LocalAddrRaw,
};
use std::io;
use std::num::NonZeroU32;
use std::os::fd::{AsRawFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use xsk_rs::config::{BindFlags, FrameSize, LibxdpFlags, QueueSize, SocketConfig, UmemConfig};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

// SAFETY: ClsKeyData is #[repr(C)], two u32s, no padding (checked against
// the C header by the layout tests in xdp::maps); any bits are valid.
unsafe impl aya::Pod for ClsKeyData {}
// SAFETY: ClsDstRaw is #[repr(C)], one u32; any bits are valid.
unsafe impl aya::Pod for ClsDstRaw {}
// SAFETY: ClsCellRaw is #[repr(C)], two u32s, no padding; any bits are valid.
unsafe impl aya::Pod for ClsCellRaw {}
// SAFETY: ClsCandRaw is #[repr(C)]: 4×u16, 2×u8, u16, 2×u32, 20 bytes with
// no implicit padding (the layout tests in xdp::maps check it against the
// C header); any bits are valid.
unsafe impl aya::Pod for ClsCandRaw {}
// SAFETY: ClsConfigRaw is #[repr(C)], two u32s, no padding; any bits are valid.
unsafe impl aya::Pod for ClsConfigRaw {}
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

/// Bytes of one UMEM frame (a power of two: a descriptor's frame is its
/// address rounded down to a multiple of this).
pub const FRAME_SIZE: usize = 4096;
/// Bytes every frame keeps at its start for headers a packet grows by (the
/// UMEM's `frame_headroom`): at least the outer IPv4, UDP (NAT-T), ESP
/// header and IV that encapsulation puts in front of the inner packet. The
/// kernel's XDP headroom lies between it and a received packet, so the room
/// in front of a packet is this plus what the XDP program left of that.
pub const FRAME_HEADROOM: usize = 128;
const _: () = assert!(FRAME_HEADROOM >= crate::esp::ENCAP_HEADROOM);

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

/// A frame held by user space: received, or taken from the free list, and
/// where in it the packet lies. Not `Clone`: handing it to a ring consumes it.
#[derive(Debug)]
pub struct Packet {
    /// Names the frame (any address inside it; the free list gets it back).
    desc: FrameDesc,
    /// Offset in the frame of the packet's first byte.
    head: u32,
    len: u32,
    owner: u32,
}

impl Packet {
    /// Length of the packet data.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset in the UMEM of the frame holding the packet.
    fn frame(&self) -> usize {
        self.desc.addr() & !(FRAME_SIZE - 1)
    }

    /// Moves the packet to `frame[head..head + len]` of its frame (after
    /// headers were added or removed in place, see [`XskSet::frame_mut`]).
    /// False, and nothing changed, if that is not inside the frame.
    pub fn set_bounds(&mut self, head: usize, len: usize) -> bool {
        if head.checked_add(len).is_none_or(|end| end > FRAME_SIZE) {
            return false;
        }
        self.head = head as u32;
        self.len = len as u32;
        true
    }
}

/// The producer side of one socket's TX ring, mapped from the socket a
/// second time (the kernel's ring layout: producer and consumer indices,
/// then `size` descriptors). xsk-rs's own TX queue of the socket is kept for
/// wake-ups and never produces, so this is the ring's only producer.
struct TxRing {
    map: NonNull<libc::c_void>,
    map_len: usize,
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    descs: NonNull<libc::xdp_desc>,
    size: u32,
    cached_prod: u32,
    cached_cons: u32,
}

// SAFETY: the mapping is owned by this value alone (unmapped on drop) and
// only used through `&mut self`; the kernel side synchronises through the
// atomic indices, so moving the value to another thread is sound.
unsafe impl Send for TxRing {}

impl TxRing {
    fn map(fd: RawFd, size: u32) -> io::Result<Self> {
        // SAFETY: xdp_mmap_offsets is plain integers; all zeroes is valid.
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        let mut optlen = std::mem::size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
        // SAFETY: `off` is writable for `optlen` bytes and outlives the call.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_XDP,
                libc::XDP_MMAP_OFFSETS,
                (&mut off as *mut libc::xdp_mmap_offsets).cast(),
                &mut optlen,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        if optlen as usize != std::mem::size_of::<libc::xdp_mmap_offsets>() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "kernel without the XDP ring flags word",
            ));
        }
        let t = off.tx;
        let map_len = t.desc as usize + size as usize * std::mem::size_of::<libc::xdp_desc>();
        // SAFETY: a fresh shared mapping of the socket's TX ring (the kernel
        // sized it to `size` descriptors at bind); nothing else is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                libc::XDP_PGOFF_TX_RING,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let map = NonNull::new(p).ok_or_else(io::Error::last_os_error)?;
        let at = |o: u64| {
            // SAFETY: the kernel's offsets lie inside the mapping it sized.
            unsafe { map.cast::<u8>().add(o as usize) }
        };
        let ring = TxRing {
            map,
            map_len,
            producer: at(t.producer).cast(),
            consumer: at(t.consumer).cast(),
            descs: at(t.desc).cast(),
            size,
            cached_prod: 0,
            cached_cons: 0,
        };
        let mut ring = ring;
        ring.cached_prod = ring.producer().load(Ordering::Relaxed);
        ring.cached_cons = ring.consumer().load(Ordering::Acquire).wrapping_add(size);
        Ok(ring)
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: a 4-byte-aligned u32 the kernel shares through the live
        // mapping; only accessed atomically.
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as in `producer`.
        unsafe { self.consumer.as_ref() }
    }

    /// Queues descriptors `(address, length)`; returns how many fit.
    fn produce(&mut self, descs: &[(u64, u32)]) -> usize {
        let want = descs.len() as u32;
        if self.cached_cons.wrapping_sub(self.cached_prod) < want {
            self.cached_cons = self
                .consumer()
                .load(Ordering::Acquire)
                .wrapping_add(self.size);
        }
        let free = self.cached_cons.wrapping_sub(self.cached_prod);
        let n = want.min(free) as usize;
        for (i, &(addr, len)) in descs[..n].iter().enumerate() {
            let idx = (self.cached_prod.wrapping_add(i as u32) & (self.size - 1)) as usize;
            let d = libc::xdp_desc {
                addr,
                len,
                options: 0,
            };
            // SAFETY: idx < size, so the slot is inside the mapping; it is
            // between the consumer and the unpublished producer index, so the
            // kernel does not read it until the store below.
            unsafe { self.descs.add(idx).write(d) };
        }
        self.cached_prod = self.cached_prod.wrapping_add(n as u32);
        self.producer().store(self.cached_prod, Ordering::Release);
        n
    }
}

impl Drop for TxRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once; no reference
        // into it outlives `self`.
        unsafe { libc::munmap(self.map.as_ptr(), self.map_len) };
    }
}

struct Port {
    ifname: String,
    queue: u32,
    /// Wake-ups only; descriptors go through `ring`.
    tx: TxQueue,
    ring: TxRing,
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

/// Another thread's access to the frames of one [`XskSet`]: a worker that is handed a
/// packet of that set (moved to it through a ring, so it is the packet's only holder)
/// reads and writes the packet's frame in place through this, and hands the packet back
/// to the set's worker, which alone sends or frees it.
#[derive(Debug, Clone, Copy)]
pub struct UmemView {
    id: u32,
    base: NonNull<u8>,
    region_len: usize,
}

// SAFETY: the view is an address and a length; using it is `unsafe` (frame_mut), with
// the caller vouching that the region is still mapped and the packet held alone.
unsafe impl Send for UmemView {}

impl UmemView {
    fn frame_ptr(&self, p: &Packet) -> Option<NonNull<u8>> {
        let start = p.frame();
        if p.owner != self.id || start + FRAME_SIZE > self.region_len {
            return None;
        }
        // SAFETY: `start + FRAME_SIZE` is inside the UMEM region (checked).
        Some(unsafe { self.base.add(start) })
    }

    /// Like [`XskSet::frame_mut`], from another thread; `None` for a packet of
    /// another set.
    ///
    /// # Safety
    /// The set this view came from must still exist (its UMEM mapped) for as long as
    /// the returned slice is used, and `p` must have been moved out of that set's
    /// worker (no other `Packet` names the frame, and the set's worker does not touch
    /// it until `p` comes back).
    pub unsafe fn frame_mut<'a>(&self, p: &'a mut Packet) -> Option<(&'a mut [u8], usize, usize)> {
        let f = self.frame_ptr(p)?;
        // SAFETY: the region is mapped and the frame held by `p` alone (the caller's
        // promise); the frame is `FRAME_SIZE` bytes inside the region (frame_ptr).
        let frame = unsafe { std::slice::from_raw_parts_mut(f.as_ptr(), FRAME_SIZE) };
        Some((frame, p.head as usize, p.len as usize))
    }
}

// SAFETY: `base` points into the UMEM region that `umem` keeps mapped for as
// long as the set lives, whichever thread owns the set; every access to it
// goes through `&self`/`&mut self` and a Packet of this set, as for the
// xsk-rs handles the set wraps.
unsafe impl Send for XskSet {}

/// One worker's UMEM and the AF_XDP sockets bound to it.
pub struct XskSet {
    id: u32,
    /// Keeps the region mapped (and registered with the kernel) for as long
    /// as `base` is used; frames are reached through `base`.
    _umem: Umem,
    /// Start of the UMEM (frame 0): frame `i` is the `FRAME_SIZE` bytes
    /// from `i * FRAME_SIZE`.
    base: NonNull<u8>,
    /// Bytes of the UMEM.
    region_len: usize,
    free: Vec<FrameDesc>,
    ports: Vec<Port>,
    scratch: Vec<FrameDesc>,
    tx_scratch: Vec<(u64, u32)>,
    /// Where a received packet starts in its frame (headroom and the
    /// kernel's XDP headroom), and so where `alloc` starts one.
    data_offset: usize,
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
            .frame_size(FrameSize::new(FRAME_SIZE as u32).map_err(|e| cfgerr(&e))?)
            .fill_queue_size(ring)
            .comp_queue_size(ring)
            .frame_headroom(FRAME_HEADROOM as u32)
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
        let region_len = total.get() as usize * FRAME_SIZE;
        let base = {
            // Address 0 names the first byte of frame 0; xsk-rs's view of
            // it from there spans the whole frame.
            let mut first = FrameDesc::default();
            // SAFETY: no frame has been given to the kernel yet (every one
            // is in `free`), so this view aliases nothing; it is dropped at
            // the end of the block and only its address kept.
            let mut d = unsafe { umem.data_mut(&mut first) };
            NonNull::new(d.contents_mut().as_mut_ptr())
                .ok_or_else(|| XskError::Umem("UMEM at address 0".into()))?
        };

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
            let ring = TxRing::map(tx.fd().as_raw_fd(), cfg.ring_size)
                .map_err(|e| sockerr(e.to_string()))?;
            ports.push(Port {
                ifname: ifname.clone(),
                queue: *queue,
                tx,
                ring,
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
            _umem: umem,
            base,
            region_len,
            free,
            ports,
            scratch: vec![FrameDesc::default(); cfg.ring_size as usize],
            tx_scratch: Vec::with_capacity(cfg.ring_size as usize),
            data_offset: FRAME_SIZE - capacity,
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

    /// Largest packet a frame holds from where a received packet starts (the
    /// headroom in front of it not counted).
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
        out.extend(self.scratch[..n].iter().map(|d| {
            let head = d.addr() & (FRAME_SIZE - 1);
            Packet {
                desc: *d,
                head: head as u32,
                len: d.lengths().data().min(FRAME_SIZE - head) as u32,
                owner: self.id,
            }
        }));
        n
    }

    /// A free frame with length 0 (for packets built from scratch), the
    /// packet starting where a received one would.
    pub fn alloc(&mut self) -> Option<Packet> {
        let desc = self.free.pop()?;
        Some(Packet {
            desc,
            head: self.data_offset as u32,
            len: 0,
            owner: self.id,
        })
    }

    /// The whole frame of a packet of this set, or `None`.
    fn frame_ptr(&self, p: &Packet) -> Option<NonNull<u8>> {
        self.view().frame_ptr(p)
    }

    /// Where this set's UMEM lies, for another worker that is handed packets of this
    /// set (see [`UmemView`]).
    pub fn view(&self) -> UmemView {
        UmemView {
            id: self.id,
            base: self.base,
            region_len: self.region_len,
        }
    }

    /// The packet's bytes.
    pub fn data<'a>(&'a self, p: &'a Packet) -> &'a [u8] {
        match self.frame_ptr(p) {
            // SAFETY: the frame belongs to this UMEM and is held by user
            // space (the Packet), so the kernel neither reads nor writes it;
            // head + len <= FRAME_SIZE (Packet keeps it so).
            Some(f) => unsafe {
                std::slice::from_raw_parts(f.add(p.head as usize).as_ptr(), p.len as usize)
            },
            None => &[],
        }
    }

    /// The packet's bytes, writable.
    pub fn data_mut<'a>(&'a self, p: &'a mut Packet) -> &'a mut [u8] {
        let (head, len) = (p.head as usize, p.len as usize);
        match self.frame_mut(p) {
            Some((f, _, _)) => &mut f[head..head + len],
            None => &mut [],
        }
    }

    /// The packet's whole frame, writable, with the packet at
    /// `frame[head..head + len]` (the returned `head` and `len`); the bytes
    /// around it are room to grow into. After moving the packet inside the
    /// frame, tell the packet with [`Packet::set_bounds`].
    pub fn frame_mut<'a>(&'a self, p: &'a mut Packet) -> Option<(&'a mut [u8], usize, usize)> {
        let f = self.frame_ptr(p)?;
        // SAFETY: as in `data`; `&mut Packet` makes this the only view of
        // the frame (the XskSet hands out frames only through Packets, and
        // each frame is in at most one Packet).
        let frame = unsafe { std::slice::from_raw_parts_mut(f.as_ptr(), FRAME_SIZE) };
        Some((frame, p.head as usize, p.len as usize))
    }

    /// Sets the packet length to `len` (at most [`capacity`](Self::capacity))
    /// and returns the packet's bytes: those past the old length are
    /// whatever the frame held before.
    pub fn resize<'a>(&'a self, p: &'a mut Packet, len: usize) -> Option<&'a mut [u8]> {
        if len > self.capacity || !p.set_bounds(p.head as usize, len) {
            return None;
        }
        let head = p.head as usize;
        let (f, _, _) = self.frame_mut(p)?;
        Some(&mut f[head..head + len])
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
        self.tx_scratch.clear();
        self.tx_scratch.extend(
            pkts.iter()
                .filter(|p| p.owner == self.id)
                .map(|p| ((p.frame() + p.head as usize) as u64, p.len)),
        );
        let p = &mut self.ports[port];
        // Every descriptor names a packet inside a frame of this UMEM that
        // user space owned (owner checked, Packet keeps head + len in its
        // frame); the Packets are dropped below, so nothing touches these
        // frames again until the completion ring returns them.
        let sent = p.ring.produce(&self.tx_scratch);
        p.in_tx += sent as u32;
        if sent > 0 && (!self.need_wakeup || p.tx.needs_wakeup()) {
            let _ = p.tx.wakeup();
        }
        let mut queued = 0;
        let mut rejected = 0;
        let mut foreign = 0;
        for pkt in pkts.drain(..) {
            if pkt.owner != self.id {
                foreign += 1;
            } else if queued < sent {
                queued += 1;
            } else {
                rejected += 1;
                self.free.push(pkt.desc);
            }
        }
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
