//! Inbound: ESP (raw or in UDP/4500) in Ethernet frames → the inner IPv4 packets.

use super::{
    cbc_jobs, group_and_compact, move_headers, partition_group, DropCounters, DropReason, Frame,
    InboundSa, Mode, ReplayError,
};
use crate::crypto::transform::{ct_eq, AeadJob, IcvJob, MAX_ICV_LEN};
use crate::wire::{
    classify_natt, EspPacket, EtherType, EthernetFrame, IpProtocol, Ipv4Packet, NatTPayload,
    UdpPacket, WireError, ESP_HEADER_LEN, ETHERNET_HEADER_LEN, NATT_PORT, UDP_HEADER_LEN,
};
use std::net::Ipv4Addr;

/// IP protocol 59: "no next header", an RFC 4303 dummy packet.
const NO_NEXT_HEADER: u8 = 59;

/// Decapsulates a batch of Ethernet frames carrying ESP (IP protocol 50, or UDP to port
/// 4500 with a non-zero first word). `lookup` maps an SPI to its inbound SA. Frames are
/// grouped by SPI; per group: replay check, ICV verification for all, replay commit,
/// decryption for all, padding and next-header checks. Good frames end up first, in
/// arrival order, each an Ethernet frame holding the inner packet (tunnel mode) or the
/// restored original packet (transport mode), moved in place: `head` and `len` now
/// bound it inside the same buffer. Returns the number of good frames. Every frame
/// whose ESP header was found reports it ([`Frame::esp_header`]), every good one the
/// inner packet's header ([`Frame::inner`]).
pub fn decapsulate_batch<'s, B, F>(
    frames: &mut [Frame<B>],
    lookup: F,
    counters: &mut DropCounters,
) -> usize
where
    B: AsRef<[u8]> + AsMut<[u8]>,
    F: Fn(u32) -> Option<&'s InboundSa>,
{
    decapsulate_with(frames, lookup, counters, Commit::Now)
}

/// When a group's replay window is updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    /// Right after the ICVs verified (one worker owns the whole stream).
    Now,
    /// Later, by [`commit_deferred`], in arrival order (the batch is a slice of another
    /// worker's stream, see `worker::fanout`).
    Deferred,
}

/// Like [`decapsulate_batch`], but the replay window is only checked, never updated: a
/// frame whose ICV verified reports its full sequence number in [`Frame::pending_seq`]
/// and is neither delivered nor dropped until [`commit_deferred`] decides (its outcome,
/// good or a trailer drop, kept for that call, is not counted here). Good frames still
/// come first; a pending frame counts as good here even if its trailer was bad.
pub fn decapsulate_batch_deferred<'s, B, F>(
    frames: &mut [Frame<B>],
    lookup: F,
    counters: &mut DropCounters,
) -> usize
where
    B: AsRef<[u8]> + AsMut<[u8]>,
    F: Fn(u32) -> Option<&'s InboundSa>,
{
    decapsulate_with(frames, lookup, counters, Commit::Deferred)
}

/// The replay commit of a frame [`decapsulate_batch_deferred`] left pending: `seq` its
/// [`Frame::pending_seq`], `outcome` its [`Frame::drop_reason`] (`None`: the inner packet
/// of `bytes` is good). Called in arrival order, this makes exactly the decisions
/// [`decapsulate_batch`] would have made on the whole stream: `Ok` delivers the packet
/// (counted on the SA), `Err` says why it is dropped (not counted anywhere yet).
pub fn commit_deferred(
    sa: &InboundSa,
    seq: u64,
    outcome: Option<DropReason>,
    bytes: usize,
) -> Result<(), DropReason> {
    sa.replay.commit(seq).map_err(replay_drop)?;
    match outcome {
        Some(r) => Err(r),
        None => {
            sa.counters.add(1, bytes as u64);
            Ok(())
        }
    }
}

fn decapsulate_with<'s, B, F>(
    frames: &mut [Frame<B>],
    lookup: F,
    counters: &mut DropCounters,
    commit: Commit,
) -> usize
where
    B: AsRef<[u8]> + AsMut<[u8]>,
    F: Fn(u32) -> Option<&'s InboundSa>,
{
    for (i, fr) in frames.iter_mut().enumerate() {
        fr.meta = Default::default();
        fr.meta.idx = i as u32;
        if let Err(r) = classify(fr) {
            fr.meta.verdict = Some(r);
            counters.add(r);
        }
    }
    group_and_compact(frames, counters, |group, counters| {
        match lookup(group[0].meta.key as u32) {
            Some(sa) => decap_group(sa, group, counters, commit),
            None => {
                for fr in group.iter_mut() {
                    fr.meta.verdict = Some(DropReason::NoSa);
                }
                partition_group(group, counters)
            }
        }
    })
}

fn wire_drop(e: WireError) -> DropReason {
    match e {
        WireError::Truncated { .. } => DropReason::Truncated,
        _ => DropReason::Malformed,
    }
}

/// Finds the ESP header and SPI of a frame.
fn classify<B: AsRef<[u8]> + AsMut<[u8]>>(fr: &mut Frame<B>) -> Result<(), DropReason> {
    let data = fr.data();
    let eth = EthernetFrame::new_checked(data).map_err(wire_drop)?;
    if eth.ethertype() != EtherType::Ipv4 {
        return Err(DropReason::NotEsp);
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).map_err(wire_drop)?;
    if !ip.verify_checksum() {
        return Err(DropReason::Malformed);
    }
    if ip.is_fragment() {
        // Reassembly is the kernel's or a later stage's job; not ours.
        return Err(DropReason::Unsupported);
    }
    let ip_off = fr.head + ETHERNET_HEADER_LEN + ip.header_len();
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let (esp_off, esp_len, udp) = match ip.protocol() {
        IpProtocol::Esp => (ip_off, ip.payload().len(), false),
        IpProtocol::Udp => {
            let u = UdpPacket::new_checked(ip.payload()).map_err(wire_drop)?;
            if u.dst_port() != NATT_PORT {
                return Err(DropReason::NotEsp);
            }
            match classify_natt(u.payload()) {
                NatTPayload::Esp => (ip_off + UDP_HEADER_LEN, u.payload().len(), true),
                NatTPayload::Malformed => return Err(DropReason::Truncated),
                NatTPayload::Ike | NatTPayload::Keepalive => return Err(DropReason::NotEsp),
            }
        }
        _ => return Err(DropReason::NotEsp),
    };
    let buf = fr.buf.as_ref();
    let esp = EspPacket::new_checked(&buf[esp_off..esp_off + esp_len]).map_err(wire_drop)?;
    fr.meta.key = esp.spi() as usize;
    fr.meta.outer = Some([u32::from(src), u32::from(dst), esp.seq()]);
    fr.meta.esp = esp_off;
    fr.meta.esp_len = esp_len;
    fr.meta.udp = udp;
    Ok(())
}

fn replay_drop(e: ReplayError) -> DropReason {
    match e {
        ReplayError::Replay => DropReason::Replay,
        ReplayError::OutOfWindow => DropReason::OutOfWindow,
    }
}

fn decap_group<B: AsRef<[u8]> + AsMut<[u8]>>(
    sa: &InboundSa,
    frames: &mut [Frame<B>],
    counters: &mut DropCounters,
    commit: Commit,
) -> usize {
    let t = sa.params.transform;
    let (iv_len, icv_len) = (t.iv_len(), t.icv_len());
    // RFC 4303 §2.4: the ciphertext ends 4-byte aligned, and CBC needs whole blocks.
    let align = t.pad_align();

    // Pass 1: SA match, lengths, replay check (before any crypto).
    for fr in frames.iter_mut() {
        let r = (|| {
            if fr.meta.udp != sa.params.natt.is_some() {
                return Err(DropReason::NoSa);
            }
            let [_, dst, wire_seq] = fr.meta.outer.ok_or(DropReason::NoSa)?;
            if Ipv4Addr::from(dst) != sa.params.local {
                return Err(DropReason::NoSa);
            }
            let min = ESP_HEADER_LEN + iv_len + icv_len + 2;
            if fr.meta.esp_len < min {
                return Err(DropReason::Truncated);
            }
            let ct_len = fr.meta.esp_len - ESP_HEADER_LEN - iv_len - icv_len;
            if !ct_len.is_multiple_of(align) {
                return Err(DropReason::Truncated);
            }
            let seq = sa.replay.infer(wire_seq);
            sa.replay.check(seq).map_err(replay_drop)?;
            fr.meta.seq = seq;
            Ok(())
        })();
        if let Err(e) = r {
            fr.meta.verdict = Some(e);
        }
    }
    let ct_range = |fr: &Frame<B>| fr.ciphertext_range(iv_len, icv_len);

    // Pass 2: verify every ICV (GCM: verify and decrypt), then commit the window.
    if t.is_aead() {
        let mut jobs: Vec<AeadJob<'_>> = Vec::with_capacity(frames.len());
        let mut owners = Vec::with_capacity(frames.len());
        for (i, fr) in frames.iter_mut().enumerate() {
            if fr.meta.verdict.is_some() {
                continue;
            }
            let (s, e) = ct_range(fr);
            let (esp, seq) = (fr.meta.esp, fr.meta.seq);
            let buf = fr.buf.as_mut();
            let mut aad = [0u8; 12];
            aad[..4].copy_from_slice(&buf[esp..esp + 4]);
            let aad_len = if sa.params.esn {
                aad[4..8].copy_from_slice(&((seq >> 32) as u32).to_be_bytes());
                aad[8..12].copy_from_slice(&buf[esp + 4..esp + 8]);
                12
            } else {
                aad[4..8].copy_from_slice(&buf[esp + 4..esp + 8]);
                8
            };
            let mut explicit_iv = [0u8; 8];
            explicit_iv.copy_from_slice(&buf[s - 8..s]);
            let mut tag = [0u8; 16];
            tag[..icv_len].copy_from_slice(&buf[e..e + icv_len]);
            jobs.push(AeadJob {
                explicit_iv,
                aad,
                aad_len,
                data: &mut buf[s..e],
                tag,
                ok: false,
            });
            owners.push(i);
        }
        sa.crypto.open_many(&mut jobs);
        let oks: Vec<bool> = jobs.iter().map(|j| j.ok).collect();
        drop(jobs);
        for (i, ok) in owners.into_iter().zip(oks) {
            if !ok {
                frames[i].meta.verdict = Some(DropReason::Auth);
            }
        }
    } else {
        let esn = sa.params.esn;
        let mut jobs: Vec<IcvJob<'_>> = Vec::with_capacity(frames.len());
        let mut owners = Vec::with_capacity(frames.len());
        for (i, fr) in frames.iter_mut().enumerate() {
            if fr.meta.verdict.is_some() {
                continue;
            }
            let (_, e) = ct_range(fr);
            let (esp, seq) = (fr.meta.esp, fr.meta.seq);
            let mut received = [0u8; MAX_ICV_LEN];
            received[..icv_len].copy_from_slice(&fr.buf.as_ref()[e..e + icv_len]);
            fr.meta.icv = received;
            let buf = fr.buf.as_mut();
            let mut end = e;
            if esn {
                // The received ICV is saved; hash ESN high bits in its place.
                buf[e..e + 4].copy_from_slice(&((seq >> 32) as u32).to_be_bytes());
                end += 4;
            }
            jobs.push(IcvJob {
                data: &buf[esp..end],
                icv: [0; MAX_ICV_LEN],
            });
            owners.push(i);
        }
        sa.crypto.icv_many(&mut jobs);
        let icvs: Vec<[u8; MAX_ICV_LEN]> = jobs.iter().map(|j| j.icv).collect();
        drop(jobs);
        for (i, icv) in owners.into_iter().zip(icvs) {
            let fr = &mut frames[i];
            if !ct_eq(&icv[..icv_len], &fr.meta.icv[..icv_len]) {
                fr.meta.verdict = Some(DropReason::Auth);
            }
        }
    }
    for fr in frames.iter_mut() {
        if fr.meta.verdict.is_none() {
            match commit {
                Commit::Now => {
                    if let Err(e) = sa.replay.commit(fr.meta.seq) {
                        fr.meta.verdict = Some(replay_drop(e));
                    }
                }
                Commit::Deferred => fr.meta.pending = true,
            }
        }
    }

    // Pass 3: decrypt the group (CBC).
    if !t.is_aead() && iv_len > 0 {
        let mut jobs = cbc_jobs(frames, iv_len, icv_len);
        sa.crypto.decrypt_many(&mut jobs);
    }

    // Pass 4: trailer, inner packet, rewrite the frame.
    let mut bytes = 0u64;
    let mut delivered = 0u64;
    for fr in frames.iter_mut() {
        if fr.meta.verdict.is_some() {
            continue;
        }
        let (s, e) = ct_range(fr);
        match finish(sa, fr, s, e) {
            Ok(n) => {
                bytes += n as u64;
                delivered += 1;
            }
            Err(r) => fr.meta.verdict = Some(r),
        }
    }
    if commit == Commit::Now {
        sa.counters.add(delivered, bytes);
    }
    partition_group(frames, counters)
}

/// Checks the ESP trailer of the decrypted payload `buf[s..e]` and turns the frame into
/// the inner packet. Returns the inner packet's length.
fn finish<B: AsRef<[u8]> + AsMut<[u8]>>(
    sa: &InboundSa,
    fr: &mut Frame<B>,
    s: usize,
    e: usize,
) -> Result<usize, DropReason> {
    let buf = fr.buf.as_mut();
    let ct = &buf[s..e];
    let pad_len = usize::from(ct[ct.len() - 2]);
    let nh = ct[ct.len() - 1];
    if pad_len + 2 > ct.len() {
        return Err(DropReason::BadPadding);
    }
    let payload_len = ct.len() - 2 - pad_len;
    let pad = &ct[payload_len..payload_len + pad_len];
    if pad
        .iter()
        .enumerate()
        .any(|(i, &b)| usize::from(b) != i + 1)
    {
        return Err(DropReason::BadPadding);
    }
    if nh == NO_NEXT_HEADER {
        // A dummy packet (traffic flow confidentiality): discard silently.
        return Err(DropReason::Unsupported);
    }
    match sa.params.mode {
        Mode::Tunnel => {
            if IpProtocol::from(nh) != IpProtocol::IpIp {
                return Err(DropReason::Unsupported);
            }
            let inner = Ipv4Packet::new_checked(&buf[s..s + payload_len])
                .map_err(|_| DropReason::Malformed)?;
            let inner_len = usize::from(inner.total_len());
            // The inner packet stays where decryption left it; a new Ethernet header
            // (the outer one's addresses) goes right in front of it.
            let new_head = s - ETHERNET_HEADER_LEN;
            move_headers(buf, fr.head, new_head, ETHERNET_HEADER_LEN);
            EthernetFrame::new_unchecked(&mut buf[new_head..s]).set_ethertype(EtherType::Ipv4);
            fr.head = new_head;
            fr.len = ETHERNET_HEADER_LEN + inner_len;
            fr.meta.delivered = true;
            Ok(inner_len)
        }
        Mode::Transport => {
            let eth_ip = ETHERNET_HEADER_LEN
                + Ipv4Packet::new_unchecked(&buf[fr.head + ETHERNET_HEADER_LEN..]).header_len();
            // The headers (Ethernet and the kept IPv4 header, at most 74 bytes) move
            // up to the payload, which stays in place.
            let new_head = s - eth_ip;
            move_headers(buf, fr.head, new_head, eth_ip);
            let hl = eth_ip - ETHERNET_HEADER_LEN;
            let total = hl + payload_len;
            let mut ip = Ipv4Packet::new_unchecked(&mut buf[new_head + ETHERNET_HEADER_LEN..s]);
            ip.set_protocol(IpProtocol::from(nh));
            ip.set_total_len(total as u16);
            ip.fill_checksum();
            fr.head = new_head;
            fr.len = ETHERNET_HEADER_LEN + total;
            fr.meta.delivered = true;
            Ok(total)
        }
    }
}
