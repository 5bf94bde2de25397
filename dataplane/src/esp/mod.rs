//! ESP (RFC 4303) tunnel and transport mode for IPv4, with NAT-T UDP encapsulation
//! (RFC 3948), anti-replay (RFC 4303 §3.4.3, RFC 4304 ESN, RFC 6479) and a DPDK
//! lib/ipsec-style batch API.
//!
//! A worker hands [`encapsulate_batch`] / [`decapsulate_batch`] a slice of [`Frame`]s
//! (Ethernet frames in buffers with head- and tailroom). The batch is grouped by SA; per
//! group the headers and padding of every packet are written, then the whole group is
//! encrypted, then every ICV is computed (decapsulation: replay check → ICV → replay
//! commit → decrypt → trailer check). Failures are moved behind the successes and
//! counted by [`DropReason`] in a [`DropCounters`]; the functions return how many frames
//! at the front are good. Drops are counters, never `Result`s.

mod decap;
mod encap;
pub mod replay;

pub use decap::{commit_deferred, decapsulate_batch, decapsulate_batch_deferred};
pub use encap::encapsulate_batch;
pub use replay::{
    ReplayError, ReplayWindow, SeqCounter, SeqRange, DEFAULT_REPLAY_WINDOW, MAX_REPLAY_WINDOW,
};

use crate::crypto::transform::{IvRng, SaCrypto, Transform, TransformError, MAX_ICV_LEN};
use crate::wire::{
    ESP_HEADER_LEN, ETHERNET_HEADER_LEN, IPV4_MIN_HEADER_LEN, NATT_PORT, UDP_HEADER_LEN,
};
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use zeroize::Zeroizing;

/// Headroom a frame needs in front of its Ethernet header for tunnel-mode encapsulation
/// with NAT-T and the largest IV (outer IPv4 20 + UDP 8 + ESP 8 + IV 16).
pub const ENCAP_HEADROOM: usize = IPV4_MIN_HEADER_LEN + UDP_HEADER_LEN + ESP_HEADER_LEN + 16;
/// Tailroom a frame needs behind its packet for encapsulation (padding ≤ 15, pad length,
/// next header, ICV ≤ 16).
pub const ENCAP_TAILROOM: usize = 15 + 2 + MAX_ICV_LEN;

/// ESP mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// IPv4 in IPv4: a new outer header from `local` to `remote`.
    Tunnel,
    /// The ESP header goes between the original IP header and its payload.
    Transport,
}

/// UDP encapsulation ports (RFC 3948), as seen from this gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatT {
    pub local_port: u16,
    pub remote_port: u16,
}

impl Default for NatT {
    fn default() -> Self {
        NatT {
            local_port: NATT_PORT,
            remote_port: NATT_PORT,
        }
    }
}

/// Why a packet was dropped and the per-thread tally of them: the data plane's one drop
/// vocabulary, defined with the region's counters (the ESP core gives the reasons in
/// [`DropReason::ESP`]).
pub use crate::sadb::{DropCounters, DropReason};

/// Per-SA traffic counters, shared by the workers using the SA.
#[derive(Debug, Default)]
pub struct SaCounters {
    pub packets: AtomicU64,
    /// Bytes of inner packets (what IOS counts for kilobyte lifetimes).
    pub bytes: AtomicU64,
}

impl SaCounters {
    fn add(&self, packets: u64, bytes: u64) {
        if packets > 0 {
            self.packets.fetch_add(packets, Ordering::Relaxed);
            self.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }
}

/// Key material of one SA direction as negotiated (KEYMAT split by the control plane).
/// For esp-gcm, `enc` is key ‖ 4-byte salt and `auth` is empty. Zeroed on drop.
#[derive(Clone)]
pub struct SaKeys {
    pub enc: Zeroizing<Vec<u8>>,
    pub auth: Zeroizing<Vec<u8>>,
}

impl SaKeys {
    pub fn new(enc: &[u8], auth: &[u8]) -> Self {
        SaKeys {
            enc: Zeroizing::new(enc.to_vec()),
            auth: Zeroizing::new(auth.to_vec()),
        }
    }
}

impl fmt::Debug for SaKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SaKeys {{ enc: <{} bytes>, auth: <{} bytes> }}",
            self.enc.len(),
            self.auth.len()
        )
    }
}

/// What an SA is, apart from its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaParams {
    pub spi: u32,
    pub transform: Transform,
    pub mode: Mode,
    /// This gateway's outer address (source outbound, destination inbound).
    pub local: Ipv4Addr,
    /// The peer's outer address.
    pub remote: Ipv4Addr,
    /// UDP encapsulation (RFC 3948), if negotiated.
    pub natt: Option<NatT>,
    /// Extended sequence numbers (RFC 4304).
    pub esn: bool,
    /// Inbound replay window in packets (IOS default 64).
    pub replay_window: u32,
    /// Outer TTL (tunnel mode).
    pub ttl: u8,
}

impl SaParams {
    /// Tunnel mode, no NAT-T, no ESN, window 64, TTL 64.
    pub fn tunnel(spi: u32, transform: Transform, local: Ipv4Addr, remote: Ipv4Addr) -> Self {
        SaParams {
            spi,
            transform,
            mode: Mode::Tunnel,
            local,
            remote,
            natt: None,
            esn: false,
            replay_window: DEFAULT_REPLAY_WINDOW,
            ttl: 64,
        }
    }

    /// The outer IPv4 packet's length after encapsulating an inner IPv4 packet of
    /// `inner_len` bytes whose header is `inner_header_len` bytes long, exactly as
    /// [`encapsulate_batch`] builds it: outer header (tunnel) or the inner header
    /// (transport), UDP (NAT-T), ESP header, IV, the protected bytes padded with the
    /// 2-byte trailer to the transform's alignment, ICV. The one place this sum is
    /// made: the encapsulation checks its room with it, the worker its MTU (the DF
    /// check and the size of fragments made before encryption).
    pub const fn encapsulated_len(&self, inner_len: usize, inner_header_len: usize) -> usize {
        let protect = match self.mode {
            Mode::Tunnel => inner_len,
            Mode::Transport => inner_len.saturating_sub(inner_header_len),
        };
        let align = self.transform.pad_align();
        self.unpadded_overhead(inner_header_len) + (protect + 2).div_ceil(align) * align
    }

    /// The longest inner IPv4 packet (with a header of `inner_header_len` bytes) whose
    /// encapsulation is at most `outer_mtu` bytes: the inverse of
    /// [`encapsulated_len`](Self::encapsulated_len). `None` if not even the header
    /// alone fits.
    pub const fn max_inner_len(&self, outer_mtu: usize, inner_header_len: usize) -> Option<usize> {
        let fixed = self.unpadded_overhead(inner_header_len);
        let align = self.transform.pad_align();
        if outer_mtu < fixed + align {
            return None;
        }
        let protect = (outer_mtu - fixed) / align * align - 2;
        let inner = match self.mode {
            Mode::Tunnel => protect,
            Mode::Transport => protect + inner_header_len,
        };
        if inner < inner_header_len {
            return None;
        }
        Some(inner)
    }

    /// Outer bytes besides the padded protected part: outer or kept IPv4 header, UDP
    /// (NAT-T), ESP header, IV, ICV.
    const fn unpadded_overhead(&self, inner_header_len: usize) -> usize {
        let t = self.transform;
        let head = match self.mode {
            Mode::Tunnel => IPV4_MIN_HEADER_LEN,
            Mode::Transport => inner_header_len,
        };
        let udp = if self.natt.is_some() {
            UDP_HEADER_LEN
        } else {
            0
        };
        head + udp + ESP_HEADER_LEN + t.iv_len() + t.icv_len()
    }
}

/// Why an SA cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaError {
    #[error(transparent)]
    Transform(#[from] TransformError),
    #[error(transparent)]
    Window(#[from] replay::BadWindowSize),
    #[error("SPI {0:#x} is reserved (0..=255)")]
    ReservedSpi(u32),
}

/// An outbound SA: expanded keys, the shared sequence counter, counters.
#[derive(Debug)]
pub struct OutboundSa {
    pub params: SaParams,
    crypto: SaCrypto,
    pub seq: SeqCounter,
    pub counters: SaCounters,
}

impl OutboundSa {
    pub fn new(params: SaParams, keys: &SaKeys) -> Result<Self, SaError> {
        if params.spi < 256 {
            return Err(SaError::ReservedSpi(params.spi));
        }
        Ok(OutboundSa {
            crypto: SaCrypto::new(params.transform, &keys.enc, &keys.auth)?,
            seq: SeqCounter::new(params.esn),
            counters: SaCounters::default(),
            params,
        })
    }

    /// Replaces the sequence counter (tests; an SA restored after a restart).
    pub fn with_next_seq(mut self, next: u64) -> Self {
        self.seq = SeqCounter::starting_at(next, self.params.esn);
        self
    }
}

/// An inbound SA: expanded keys, the replay window, counters.
#[derive(Debug)]
pub struct InboundSa {
    pub params: SaParams,
    crypto: SaCrypto,
    pub replay: ReplayWindow,
    pub counters: SaCounters,
}

impl InboundSa {
    pub fn new(params: SaParams, keys: &SaKeys) -> Result<Self, SaError> {
        if params.spi < 256 {
            return Err(SaError::ReservedSpi(params.spi));
        }
        Ok(InboundSa {
            crypto: SaCrypto::new(params.transform, &keys.enc, &keys.auth)?,
            replay: ReplayWindow::new(params.replay_window, params.esn)?,
            counters: SaCounters::default(),
            params,
        })
    }
}

/// Per-worker state for ESP: the IV generator and the outer IPv4 identification.
#[derive(Debug)]
pub struct EspContext {
    pub rng: IvRng,
    ip_id: u16,
}

impl EspContext {
    /// Seeds the IV generator from the OS once.
    pub fn new() -> Self {
        let mut rng = IvRng::from_os();
        let mut id = [0u8; 2];
        rng.fill(&mut id);
        EspContext {
            rng,
            ip_id: u16::from_be_bytes(id),
        }
    }

    fn next_ip_id(&mut self) -> u16 {
        self.ip_id = self.ip_id.wrapping_add(1);
        self.ip_id
    }
}

impl Default for EspContext {
    fn default() -> Self {
        Self::new()
    }
}

/// The outer headers of an inbound ESP frame, as [`decapsulate_batch`] found them
/// (also for a frame it dropped after finding its ESP header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspHeader {
    /// Outer IPv4 source and destination.
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub spi: u32,
    /// The sequence number field (the low 32 bits).
    pub seq: u32,
}

/// The IPv4 header of the packet a decapsulation delivered (which checked its
/// lengths), so that the caller forwards without parsing it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InnerHeader {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub header_len: usize,
    /// Whether the header checksum verifies (ESP authenticated the bytes; whether
    /// they are a good IPv4 header is the forwarder's call, so this is computed
    /// when asked for, by [`Frame::inner`]).
    pub checksum_ok: bool,
}

/// Per-frame scratch the batch functions keep with the frame while it moves.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FrameMeta {
    /// Position in the batch before grouping.
    idx: u32,
    /// Grouping key (SPI inbound, SA address outbound).
    key: usize,
    verdict: Option<DropReason>,
    /// Offset in `buf` of the ESP header.
    esp: usize,
    /// Bytes from the ESP header to the end of the ICV.
    esp_len: usize,
    /// Full (ESN-inferred) sequence number.
    seq: u64,
    /// Inbound: UDP-encapsulated.
    udp: bool,
    icv: [u8; MAX_ICV_LEN],
    /// Inbound, once classified: outer source and destination, sequence number
    /// field (the SPI is `key`).
    outer: Option<[u32; 3]>,
    /// Inbound: `buf[head + 14..]` is a delivered packet whose lengths were checked.
    delivered: bool,
    /// Inbound, deferred commit: the ICV verified, the replay window is not updated yet.
    pending: bool,
}

/// A packet in a buffer with room around it. `buf[head..head + len]` is the Ethernet
/// frame; the batch functions move `head` and `len` as they add or remove headers.
#[derive(Debug, Clone)]
pub struct Frame<B> {
    pub buf: B,
    pub head: usize,
    pub len: usize,
    pub(crate) meta: FrameMeta,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Frame<B> {
    /// Where the ciphertext lies: after the ESP header and the IV, before the ICV.
    pub(crate) fn ciphertext_range(&self, iv_len: usize, icv_len: usize) -> (usize, usize) {
        let s = self.meta.esp + ESP_HEADER_LEN + iv_len;
        (s, self.meta.esp + self.meta.esp_len - icv_len)
    }

    /// A frame whose packet occupies `buf[head..head + len]`.
    pub fn new(buf: B, head: usize, len: usize) -> Self {
        assert!(head + len <= buf.as_ref().len(), "frame outside its buffer");
        Frame {
            buf,
            head,
            len,
            meta: FrameMeta::default(),
        }
    }

    pub fn data(&self) -> &[u8] {
        &self.buf.as_ref()[self.head..self.head + self.len]
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        let (h, l) = (self.head, self.len);
        &mut self.buf.as_mut()[h..h + l]
    }

    pub fn headroom(&self) -> usize {
        self.head
    }

    pub fn tailroom(&self) -> usize {
        self.buf.as_ref().len() - self.head - self.len
    }

    /// The frame's position in the slice given to the last batch call (batches reorder
    /// frames: drops move behind, and grouping by SA moves frames of other SAs).
    pub fn batch_index(&self) -> usize {
        self.meta.idx as usize
    }

    /// Why the last batch call dropped this frame (`None` for a good one).
    pub fn drop_reason(&self) -> Option<DropReason> {
        self.meta.verdict
    }

    /// Inbound, after [`decapsulate_batch_deferred`]: the full sequence number of a
    /// frame whose ICV verified and that waits for [`commit_deferred`].
    pub fn pending_seq(&self) -> Option<u64> {
        self.meta.pending.then_some(self.meta.seq)
    }

    /// Inbound: the outer addresses, SPI and sequence number [`decapsulate_batch`]
    /// read (`None` if the frame was dropped before its ESP header was found).
    pub fn esp_header(&self) -> Option<EspHeader> {
        let [src, dst, seq] = self.meta.outer?;
        Some(EspHeader {
            src: Ipv4Addr::from(src),
            dst: Ipv4Addr::from(dst),
            spi: self.meta.key as u32,
            seq,
        })
    }

    /// Inbound: the header of the packet [`decapsulate_batch`] delivered in this
    /// frame (`None` for a dropped frame).
    pub fn inner(&self) -> Option<InnerHeader> {
        if !self.meta.delivered || self.meta.verdict.is_some() {
            return None;
        }
        let ip =
            crate::wire::Ipv4Packet::new_checked(self.data().get(ETHERNET_HEADER_LEN..)?).ok()?;
        Some(InnerHeader {
            src: ip.src_addr(),
            dst: ip.dst_addr(),
            protocol: u8::from(ip.protocol()),
            header_len: ip.header_len(),
            checksum_ok: ip.verify_checksum(),
        })
    }
}

impl Frame<Vec<u8>> {
    /// Copies `packet` into a new buffer with encapsulation head- and tailroom.
    pub fn with_room(packet: &[u8]) -> Self {
        let mut buf = vec![0u8; ENCAP_HEADROOM + packet.len() + ENCAP_TAILROOM];
        buf[ENCAP_HEADROOM..ENCAP_HEADROOM + packet.len()].copy_from_slice(packet);
        Frame::new(buf, ENCAP_HEADROOM, packet.len())
    }
}

/// Sorts `frames` by their meta key (stable through the index), calls `f` on each run of
/// equal keys, which must put the run's good frames first and return their number, and
/// compacts all good frames to the front of the slice in their original order. Frames
/// already carrying a verdict are dropped without being grouped.
fn group_and_compact<B>(
    frames: &mut [Frame<B>],
    counters: &mut DropCounters,
    mut f: impl FnMut(&mut [Frame<B>], &mut DropCounters) -> usize,
) -> usize {
    // Dropped frames go last; the rest sorted by key, ties by original position.
    frames.sort_unstable_by_key(|fr| (fr.meta.verdict.is_some(), fr.meta.key, fr.meta.idx));
    let live = frames
        .iter()
        .take_while(|fr| fr.meta.verdict.is_none())
        .count();
    let mut good = 0;
    let mut start = 0;
    while start < live {
        let key = frames[start].meta.key;
        let mut end = start + 1;
        while end < live && frames[end].meta.key == key {
            end += 1;
        }
        let n = f(&mut frames[start..end], counters);
        for i in start..start + n {
            frames.swap(good, i);
            good += 1;
        }
        start = end;
    }
    // Keep the survivors in arrival order (grouping must not reorder one flow, and
    // across SAs arrival order is the least surprising).
    frames[..good].sort_unstable_by_key(|fr| fr.meta.idx);
    good
}

/// Moves frames with `verdict == None` (and pending ones) to the front (keeping their
/// order) and returns their number; counts the others.
fn partition_group<B>(frames: &mut [Frame<B>], counters: &mut DropCounters) -> usize {
    let mut w = 0;
    for i in 0..frames.len() {
        let m = &frames[i].meta;
        // A pending frame's outcome is decided (and counted) at its commit.
        match m.verdict {
            Some(r) if !m.pending => counters.add(r),
            _ => {
                frames.swap(w, i);
                w += 1;
            }
        }
    }
    w
}

#[cfg(test)]
mod tests;

/// Longest run of headers that moves when a packet grows or shrinks in place: Ethernet
/// and an IPv4 header with the most options.
const MAX_MOVED_HEADERS: usize = ETHERNET_HEADER_LEN + 60;

/// Moves the `len` header bytes at `buf[from..]` to `buf[to..]` (the ranges may
/// overlap) through a small stack copy: only headers move, never the packet behind them.
pub(crate) fn move_headers(buf: &mut [u8], from: usize, to: usize, len: usize) {
    debug_assert!(len <= MAX_MOVED_HEADERS);
    let mut tmp = [0u8; MAX_MOVED_HEADERS];
    let len = len.min(MAX_MOVED_HEADERS);
    tmp[..len].copy_from_slice(&buf[from..from + len]);
    buf[to..to + len].copy_from_slice(&tmp[..len]);
}

/// One CBC job per frame still in the batch (no verdict yet), its IV read from the packet:
/// the same shape for encryption (IV just written) and decryption (IV received).
pub(crate) fn cbc_jobs<B: AsRef<[u8]> + AsMut<[u8]>>(
    frames: &mut [Frame<B>],
    iv_len: usize,
    icv_len: usize,
) -> Vec<crate::crypto::transform::CipherJob<'_>> {
    use crate::crypto::transform::{CipherJob, MAX_IV_LEN};
    let mut jobs = Vec::with_capacity(frames.len());
    if iv_len == 0 {
        return jobs;
    }
    for fr in frames.iter_mut() {
        if fr.meta.verdict.is_some() {
            continue;
        }
        let (s, e) = fr.ciphertext_range(iv_len, icv_len);
        let buf = fr.buf.as_mut();
        let mut iv = [0u8; MAX_IV_LEN];
        iv[..iv_len].copy_from_slice(&buf[s - iv_len..s]);
        jobs.push(CipherJob {
            iv,
            data: &mut buf[s..e],
        });
    }
    jobs
}
