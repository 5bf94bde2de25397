//! Outbound: IPv4 packets in Ethernet frames → ESP (tunnel or transport, raw or in UDP).

use super::{
    cbc_jobs, group_and_compact, move_headers, partition_group, DropCounters, DropReason,
    EspContext, Frame, Mode, OutboundSa,
};
use crate::crypto::transform::{AeadJob, IcvJob, MAX_ICV_LEN};
use crate::wire::{
    EspPacket, EtherType, EthernetFrame, IpProtocol, Ipv4Packet, UdpPacket, WireError,
    ESP_HEADER_LEN, ETHERNET_HEADER_LEN, IPV4_MIN_HEADER_LEN, UDP_HEADER_LEN,
};

/// Encapsulates a batch of Ethernet frames carrying IPv4. `sa_of` picks each frame's
/// outbound SA (`None`: dropped as `NoSa`). Frames are grouped by SA; each group reserves
/// its sequence numbers with one atomic add, gets headers and padding, then is encrypted
/// and authenticated as a whole. Good frames end up first, in arrival order, each now an
/// Ethernet frame with the outer packet (MAC addresses kept from the input; the caller
/// rewrites them for the next hop). Returns the number of good frames; the rest are
/// counted in `counters` and carry their reason in [`Frame::drop_reason`].
pub fn encapsulate_batch<'s, B, F>(
    frames: &mut [Frame<B>],
    sa_of: F,
    ctx: &mut EspContext,
    counters: &mut DropCounters,
) -> usize
where
    B: AsRef<[u8]> + AsMut<[u8]>,
    F: Fn(&Frame<B>) -> Option<&'s OutboundSa>,
{
    for (i, fr) in frames.iter_mut().enumerate() {
        fr.meta = Default::default();
        fr.meta.idx = i as u32;
        match sa_of(fr) {
            Some(sa) => fr.meta.key = sa as *const OutboundSa as usize,
            None => {
                fr.meta.verdict = Some(DropReason::NoSa);
                counters.add(DropReason::NoSa);
            }
        }
    }
    group_and_compact(frames, counters, |group, counters| {
        let sa = sa_of(&group[0]).expect("grouped frames have an SA");
        encap_group(sa, group, ctx, counters)
    })
}

/// What pass 1 learns about a frame.
struct Plan {
    inner_len: usize,
    /// Bytes protected by ESP: the inner packet (tunnel) or the IP payload (transport).
    protect: usize,
    pad: usize,
}

fn wire_drop(e: WireError) -> DropReason {
    match e {
        WireError::Truncated { .. } => DropReason::Truncated,
        _ => DropReason::Malformed,
    }
}

fn plan<B: AsRef<[u8]> + AsMut<[u8]>>(sa: &OutboundSa, fr: &Frame<B>) -> Result<Plan, DropReason> {
    let t = sa.params.transform;
    let data = fr.data();
    let eth = EthernetFrame::new_checked(data).map_err(wire_drop)?;
    if eth.ethertype() != EtherType::Ipv4 {
        return Err(DropReason::Unsupported);
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).map_err(wire_drop)?;
    let inner_len = usize::from(ip.total_len());
    let protect = match sa.params.mode {
        Mode::Tunnel => inner_len,
        Mode::Transport => {
            if ip.is_fragment() {
                return Err(DropReason::Unsupported);
            }
            inner_len - ip.header_len()
        }
    };
    let align = t.pad_align();
    let pad = (align - (protect + 2) % align) % align;
    let udp = if sa.params.natt.is_some() {
        UDP_HEADER_LEN
    } else {
        0
    };
    let add_front = udp
        + ESP_HEADER_LEN
        + t.iv_len()
        + if sa.params.mode == Mode::Tunnel {
            IPV4_MIN_HEADER_LEN
        } else {
            0
        };
    let add_back = pad + 2 + t.icv_len();
    // With ESN the high sequence bits are written where the ICV goes before hashing.
    if fr.head < add_front
        || fr.buf.as_ref().len() - (fr.head + ETHERNET_HEADER_LEN + inner_len) < add_back
    {
        return Err(DropReason::NoRoom);
    }
    // Tunnel: 20 + UDP + ESP over the whole inner packet; transport: the original header
    // plus UDP + ESP over its payload (the same sum the worker sizes packets with).
    let outer_ip_len = sa.params.encapsulated_len(inner_len, ip.header_len());
    debug_assert_eq!(outer_ip_len, inner_len + add_front + add_back);
    if outer_ip_len > usize::from(u16::MAX) {
        return Err(DropReason::Unsupported);
    }
    Ok(Plan {
        inner_len,
        protect,
        pad,
    })
}

fn encap_group<B: AsRef<[u8]> + AsMut<[u8]>>(
    sa: &OutboundSa,
    frames: &mut [Frame<B>],
    ctx: &mut EspContext,
    counters: &mut DropCounters,
) -> usize {
    let t = sa.params.transform;
    let (iv_len, icv_len) = (t.iv_len(), t.icv_len());
    let udp = if sa.params.natt.is_some() {
        UDP_HEADER_LEN
    } else {
        0
    };

    // Pass 1: validate and plan.
    let mut plans: Vec<Option<Plan>> = Vec::with_capacity(frames.len());
    for fr in frames.iter_mut() {
        match plan(sa, fr) {
            Ok(p) => plans.push(Some(p)),
            Err(r) => {
                fr.meta.verdict = Some(r);
                plans.push(None);
            }
        }
    }
    // One atomic add reserves the group's sequence numbers.
    let alive = plans.iter().filter(|p| p.is_some()).count() as u32;
    let range = sa.seq.reserve(alive);
    let mut k = 0u32;
    let mut bytes = 0u64;
    let mut sent = 0u64;

    // Pass 2: headers, IV, padding and trailer for every packet.
    for (fr, p) in frames.iter_mut().zip(plans.iter()) {
        let Some(p) = p else { continue };
        if k >= range.granted {
            fr.meta.verdict = Some(DropReason::SeqExhausted);
            continue;
        }
        let seq = range.start + u64::from(k);
        k += 1;
        fr.meta.seq = seq;
        let inner_off = fr.head + ETHERNET_HEADER_LEN;
        let buf = fr.buf.as_mut();
        let ct_len = p.protect + p.pad + 2;
        let esp_len = ESP_HEADER_LEN + iv_len + ct_len + icv_len;
        let (new_head, esp_off, next_header, trailer_off) = match sa.params.mode {
            Mode::Tunnel => {
                let (tos, df) = {
                    let ip = Ipv4Packet::new_unchecked(&buf[inner_off..]);
                    (ip.dscp_ecn(), ip.dont_frag())
                };
                let front = IPV4_MIN_HEADER_LEN + udp + ESP_HEADER_LEN + iv_len;
                let new_head = fr.head - front;
                // The inner packet stays in place; its Ethernet header moves to the
                // front of the headers written before it.
                move_headers(buf, fr.head, new_head, ETHERNET_HEADER_LEN);
                let o = new_head + ETHERNET_HEADER_LEN;
                let mut ip = Ipv4Packet::new_unchecked(&mut buf[o..o + IPV4_MIN_HEADER_LEN]);
                ip.set_version_and_header_len(IPV4_MIN_HEADER_LEN);
                ip.set_dscp_ecn(tos);
                ip.set_total_len((IPV4_MIN_HEADER_LEN + udp + esp_len) as u16);
                ip.set_ident(ctx.next_ip_id());
                ip.set_flags_and_offset(df, false, 0);
                ip.set_ttl(sa.params.ttl);
                ip.set_protocol(if udp > 0 {
                    IpProtocol::Udp
                } else {
                    IpProtocol::Esp
                });
                ip.set_src_addr(sa.params.local);
                ip.set_dst_addr(sa.params.remote);
                ip.fill_checksum();
                (
                    new_head,
                    o + IPV4_MIN_HEADER_LEN + udp,
                    IpProtocol::IpIp,
                    inner_off + p.inner_len,
                )
            }
            Mode::Transport => {
                let (hl, proto) = {
                    let ip = Ipv4Packet::new_unchecked(&buf[inner_off..]);
                    (ip.header_len(), ip.protocol())
                };
                let front = udp + ESP_HEADER_LEN + iv_len;
                let new_head = fr.head - front;
                // The Ethernet and IPv4 headers (at most 74 bytes) move to the front;
                // the payload stays in place.
                move_headers(buf, fr.head, new_head, ETHERNET_HEADER_LEN + hl);
                let o = new_head + ETHERNET_HEADER_LEN;
                let mut ip = Ipv4Packet::new_unchecked(&mut buf[o..o + hl]);
                ip.set_total_len((hl + udp + esp_len) as u16);
                ip.set_protocol(if udp > 0 {
                    IpProtocol::Udp
                } else {
                    IpProtocol::Esp
                });
                ip.fill_checksum();
                (new_head, o + hl + udp, proto, inner_off + p.inner_len)
            }
        };
        if let Some(n) = sa.params.natt {
            let mut u = UdpPacket::new_unchecked(&mut buf[esp_off - udp..esp_off]);
            u.set_src_port(n.local_port);
            u.set_dst_port(n.remote_port);
            u.set_len((UDP_HEADER_LEN + esp_len) as u16);
            u.set_checksum(0);
        }
        let mut esp = EspPacket::new_unchecked(&mut buf[esp_off..esp_off + ESP_HEADER_LEN]);
        esp.set_spi(sa.params.spi);
        esp.set_seq(seq as u32);
        let iv = &mut buf[esp_off + ESP_HEADER_LEN..esp_off + ESP_HEADER_LEN + iv_len];
        if t.is_aead() {
            // RFC 4106 §3.1: the explicit IV must never repeat for a key; the 64-bit
            // sequence number never does.
            iv.copy_from_slice(&seq.to_be_bytes());
        } else {
            ctx.rng.fill(iv);
        }
        for (i, b) in buf[trailer_off..trailer_off + p.pad].iter_mut().enumerate() {
            *b = (i + 1) as u8;
        }
        buf[trailer_off + p.pad] = p.pad as u8;
        buf[trailer_off + p.pad + 1] = u8::from(next_header);
        let outer_len = esp_off - new_head + esp_len;
        fr.head = new_head;
        fr.len = outer_len;
        fr.meta.esp = esp_off;
        fr.meta.esp_len = esp_len;
        bytes += p.inner_len as u64;
        sent += 1;
    }

    // Pass 3: encrypt the group, then authenticate it.
    let ct_range = |fr: &Frame<B>| fr.ciphertext_range(iv_len, icv_len);
    if t.is_aead() {
        let mut jobs: Vec<AeadJob<'_>> = Vec::with_capacity(frames.len());
        let mut owners: Vec<usize> = Vec::with_capacity(frames.len());
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
                aad[8..12].copy_from_slice(&(seq as u32).to_be_bytes());
                12
            } else {
                aad[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
                8
            };
            jobs.push(AeadJob {
                explicit_iv: seq.to_be_bytes(),
                aad,
                aad_len,
                data: &mut buf[s..e],
                tag: [0; 16],
                ok: false,
            });
            owners.push(i);
        }
        sa.crypto.seal_many(&mut jobs);
        let tags: Vec<[u8; 16]> = jobs.iter().map(|j| j.tag).collect();
        drop(jobs);
        for (i, tag) in owners.into_iter().zip(tags) {
            let fr = &mut frames[i];
            let (_, e) = ct_range(fr);
            fr.buf.as_mut()[e..e + icv_len].copy_from_slice(&tag[..icv_len]);
        }
    } else if sa.crypto.has_fused_one() && sent == 1 {
        // A lone packet: one CBC chain with the HMAC run beside it (crypto::transform::
        // fused), instead of the chain and then the HMAC.
        let fr = frames
            .iter_mut()
            .find(|fr| fr.meta.verdict.is_none())
            .expect("one live frame");
        let (s, e) = fr.ciphertext_range(iv_len, icv_len);
        let (esp, seq) = (fr.meta.esp, fr.meta.seq);
        let buf = fr.buf.as_mut();
        let end = esn_high_in_place(buf, e, seq, sa.params.esn);
        let icv = sa
            .crypto
            .encrypt_icv_one(&mut buf[esp..end], s - esp..e - esp)
            .expect("fused transform");
        buf[e..e + icv_len].copy_from_slice(&icv[..icv_len]);
    } else {
        let mut jobs = cbc_jobs(frames, iv_len, icv_len);
        sa.crypto.encrypt_many(&mut jobs);
        drop(jobs);
        let esn = sa.params.esn;
        let mut jobs: Vec<IcvJob<'_>> = Vec::with_capacity(frames.len());
        for fr in frames.iter_mut() {
            if fr.meta.verdict.is_some() {
                continue;
            }
            let (_, e) = ct_range(fr);
            let (esp, seq) = (fr.meta.esp, fr.meta.seq);
            let buf = fr.buf.as_mut();
            let end = esn_high_in_place(buf, e, seq, esn);
            jobs.push(IcvJob {
                data: &buf[esp..end],
                icv: [0; MAX_ICV_LEN],
            });
        }
        sa.crypto.icv_many(&mut jobs);
        let icvs: Vec<[u8; MAX_ICV_LEN]> = jobs.iter().map(|j| j.icv).collect();
        drop(jobs);
        let mut it = icvs.into_iter();
        for fr in frames.iter_mut() {
            if fr.meta.verdict.is_some() {
                continue;
            }
            let icv = it.next().expect("one ICV per live frame");
            let (_, e) = ct_range(fr);
            fr.buf.as_mut()[e..e + icv_len].copy_from_slice(&icv[..icv_len]);
        }
    }
    sa.counters.add(sent, bytes);
    partition_group(frames, counters)
}

/// RFC 4303 §2.2.1: with ESN the high 32 bits of the sequence number are authenticated but
/// not sent; they are hashed in place where the ICV will go (at `e`, the ciphertext end).
/// Returns the end of what the ICV covers.
fn esn_high_in_place(buf: &mut [u8], e: usize, seq: u64, esn: bool) -> usize {
    if !esn {
        return e;
    }
    buf[e..e + 4].copy_from_slice(&((seq >> 32) as u32).to_be_bytes());
    e + 4
}
