//! IPv4 fragmentation before encryption (RFC 791 §3.2; IOS `crypto ipsec
//! fragmentation before-encryption`, its default): an inner packet without
//! DF that would not fit the outside MTU once encapsulated is split into
//! fragments that each do, and each fragment becomes an ESP packet of its
//! own. The receiving host reassembles; the peer gateway forwards the
//! fragments as they are.
//!
//! Sans-IO: [`Fragmenter::new`] looks at one IPv4 packet and a size limit
//! and plans the pieces; [`Fragmenter::write`] writes any piece into a
//! buffer and [`Fragmenter::first_in_place`] turns the packet itself into
//! the first piece (so a worker copies only the bytes of the others).
//!
//! Options: the first piece keeps the whole header; the others carry only
//! the options whose copied bit is set (RFC 791 §3.1), padded with
//! end-of-option-list to a multiple of 4. Malformed options refuse the
//! packet. A packet that is already a fragment (MF set or a non-zero
//! offset) is split further: offsets continue from its own, and the last
//! piece keeps its MF.

use crate::wire::checksum::checksum;

const MIN_HEADER: usize = 20;
const MAX_HEADER: usize = 60;
const MF: u16 = 0x2000;
const DF: u16 = 0x4000;
const RESERVED: u16 = 0x8000;
const OFFSET_MASK: u16 = 0x1fff;

/// Why a packet cannot be fragmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragError {
    /// Not an IPv4 packet with consistent lengths.
    Malformed,
    /// An option's length runs past the header or is below 2.
    BadOptions,
    /// DF is set: the sender forbids fragmentation.
    DontFragment,
    /// The limit leaves no room for 8 data bytes behind a header.
    TooSmall,
    /// It fits already: nothing to do.
    Fits,
}

/// The plan for splitting one IPv4 packet into pieces of at most `max_len`
/// bytes.
#[derive(Debug, Clone, Copy)]
pub struct Fragmenter {
    /// Header length of the packet (and of the first piece).
    first_header: usize,
    /// Header of the other pieces (fields other than options are patched
    /// per piece); `rest_header_len` bytes of it are used.
    rest_header: [u8; MAX_HEADER],
    rest_header_len: usize,
    /// Data bytes of the first piece and of each other piece but the last
    /// (multiples of 8).
    first_data: usize,
    rest_data: usize,
    /// Data bytes of the packet (behind its header).
    data_len: usize,
    /// The packet's own offset (8-byte units) and MF.
    offset: u16,
    more: bool,
    count: usize,
}

fn field(ip: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([ip[at], ip[at + 1]])
}

/// Only the options with the copied bit, padded to a multiple of 4 bytes.
fn copied_options(
    opts: &[u8],
    out: &mut [u8; MAX_HEADER - MIN_HEADER],
) -> Result<usize, FragError> {
    let mut n = 0;
    let mut i = 0;
    while i < opts.len() {
        let ty = opts[i];
        match ty {
            0 => break,
            1 => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let len = usize::from(*opts.get(i + 1).ok_or(FragError::BadOptions)?);
        if len < 2 || i + len > opts.len() {
            return Err(FragError::BadOptions);
        }
        if ty & 0x80 != 0 {
            out[n..n + len].copy_from_slice(&opts[i..i + len]);
            n += len;
        }
        i += len;
    }
    let padded = n.div_ceil(4) * 4;
    out[n..padded].fill(0);
    Ok(padded)
}

impl Fragmenter {
    /// Plans the pieces of the IPv4 packet at the start of `ip` (bytes past
    /// its total length are ignored) so that none is longer than `max_len`.
    pub fn new(ip: &[u8], max_len: usize) -> Result<Self, FragError> {
        if ip.len() < MIN_HEADER || ip[0] >> 4 != 4 {
            return Err(FragError::Malformed);
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(field(ip, 2));
        if ihl < MIN_HEADER || total < ihl || total > ip.len() {
            return Err(FragError::Malformed);
        }
        if total <= max_len {
            return Err(FragError::Fits);
        }
        let flags = field(ip, 6);
        if flags & DF != 0 {
            return Err(FragError::DontFragment);
        }
        let mut opts = [0u8; MAX_HEADER - MIN_HEADER];
        let opts_len = copied_options(&ip[MIN_HEADER..ihl], &mut opts)?;
        let mut rest_header = [0u8; MAX_HEADER];
        rest_header[..MIN_HEADER].copy_from_slice(&ip[..MIN_HEADER]);
        rest_header[MIN_HEADER..MIN_HEADER + opts_len].copy_from_slice(&opts[..opts_len]);
        let rest_header_len = MIN_HEADER + opts_len;
        rest_header[0] = 0x40 | (rest_header_len / 4) as u8;
        let first_data = max_len.saturating_sub(ihl) / 8 * 8;
        let rest_data = max_len.saturating_sub(rest_header_len) / 8 * 8;
        if first_data == 0 || rest_data == 0 {
            return Err(FragError::TooSmall);
        }
        let data_len = total - ihl;
        let offset = flags & OFFSET_MASK;
        // The last piece's offset must still fit the 13-bit field.
        if usize::from(offset) + (data_len - 1) / 8 > usize::from(OFFSET_MASK) {
            return Err(FragError::Malformed);
        }
        let count = 1 + (data_len - first_data).div_ceil(rest_data);
        Ok(Fragmenter {
            first_header: ihl,
            rest_header,
            rest_header_len,
            first_data,
            rest_data,
            data_len,
            offset,
            more: flags & MF != 0,
            count,
        })
    }

    /// Pieces the packet becomes (at least 2).
    pub fn count(&self) -> usize {
        self.count
    }

    /// Where piece `k`'s data starts in the packet's data, and how long it is.
    fn data_range(&self, k: usize) -> (usize, usize) {
        let start = if k == 0 {
            0
        } else {
            self.first_data + (k - 1) * self.rest_data
        };
        let size = if k == 0 {
            self.first_data
        } else {
            self.rest_data
        };
        (start, size.min(self.data_len - start))
    }

    /// Total length of piece `k` (`k < count()`).
    pub fn piece_len(&self, k: usize) -> usize {
        let header = if k == 0 {
            self.first_header
        } else {
            self.rest_header_len
        };
        header + self.data_range(k).1
    }

    /// Sets total length, flags/offset and checksum of piece `k`'s header.
    fn finish_header(&self, k: usize, h: &mut [u8], header_len: usize) {
        let (start, size) = self.data_range(k);
        let last = k + 1 == self.count;
        let reserved = field(h, 6) & RESERVED;
        let mf = if !last || self.more { MF } else { 0 };
        let off = self.offset + (start / 8) as u16;
        h[2..4].copy_from_slice(&((header_len + size) as u16).to_be_bytes());
        h[6..8].copy_from_slice(&(reserved | mf | off).to_be_bytes());
        h[10..12].copy_from_slice(&[0, 0]);
        let c = checksum(&h[..header_len]);
        h[10..12].copy_from_slice(&c.to_be_bytes());
    }

    /// Writes piece `k` of `ip` (the packet this plan was made for) into
    /// `out`; returns its length, or `None` if `out` is too short or `k` out
    /// of range.
    pub fn write(&self, ip: &[u8], k: usize, out: &mut [u8]) -> Option<usize> {
        if k >= self.count {
            return None;
        }
        let len = self.piece_len(k);
        let out = out.get_mut(..len)?;
        let header_len = if k == 0 {
            out[..self.first_header].copy_from_slice(ip.get(..self.first_header)?);
            self.first_header
        } else {
            out[..self.rest_header_len].copy_from_slice(&self.rest_header[..self.rest_header_len]);
            self.rest_header_len
        };
        let (start, size) = self.data_range(k);
        let from = self.first_header + start;
        out[header_len..].copy_from_slice(ip.get(from..from + size)?);
        self.finish_header(k, out, header_len);
        Some(len)
    }

    /// Turns the packet in `ip` into its first piece (its header and the
    /// first data bytes stay where they are); returns the piece's length.
    /// Write the other pieces first: this overwrites the original header.
    pub fn first_in_place(&self, ip: &mut [u8]) -> usize {
        self.finish_header(0, ip, self.first_header);
        self.piece_len(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 packet with `opts` (a multiple of 4 bytes), flags/offset
    /// `flags` and `data_len` bytes of patterned data.
    pub(crate) fn packet(opts: &[u8], flags: u16, data_len: usize) -> Vec<u8> {
        let ihl = MIN_HEADER + opts.len();
        let mut p = vec![0u8; ihl + data_len];
        p[0] = 0x40 | (ihl / 4) as u8;
        p[2..4].copy_from_slice(&((ihl + data_len) as u16).to_be_bytes());
        p[4..6].copy_from_slice(&0xbeefu16.to_be_bytes());
        p[6..8].copy_from_slice(&flags.to_be_bytes());
        p[8] = 63;
        p[9] = 17;
        p[12..16].copy_from_slice(&[10, 1, 1, 2]);
        p[16..20].copy_from_slice(&[10, 1, 2, 2]);
        p[MIN_HEADER..ihl].copy_from_slice(opts);
        for (i, b) in p[ihl..].iter_mut().enumerate() {
            *b = (i * 7 + i / 251) as u8;
        }
        let c = checksum(&p[..ihl]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p
    }

    /// All pieces: the others written out, then the first made in place.
    fn split(p: &[u8], max: usize) -> Vec<Vec<u8>> {
        let f = Fragmenter::new(p, max).unwrap();
        let mut v = vec![Vec::new()];
        for k in 1..f.count() {
            let mut out = vec![0u8; 2000];
            let n = f.write(p, k, &mut out).unwrap();
            out.truncate(n);
            v.push(out);
        }
        let mut first = p.to_vec();
        let n = f.first_in_place(&mut first);
        first.truncate(n);
        // Writing piece 0 gives the same bytes.
        let mut again = vec![0u8; 2000];
        let m = f.write(p, 0, &mut again).unwrap();
        assert_eq!(&again[..m], &first[..]);
        v[0] = first;
        v
    }

    /// Checks every piece's header and puts the data back together.
    fn reassemble(orig: &[u8], pieces: &[Vec<u8>], max: usize) -> Vec<u8> {
        let oihl = usize::from(orig[0] & 0x0f) * 4;
        let oflags = field(orig, 6);
        let mut data = Vec::new();
        for (k, f) in pieces.iter().enumerate() {
            let ihl = usize::from(f[0] & 0x0f) * 4;
            assert!(f.len() <= max, "piece {k} is {} > {max}", f.len());
            assert_eq!(usize::from(field(f, 2)), f.len());
            assert_eq!(checksum(&f[..ihl]), 0, "piece {k} checksum");
            assert_eq!(&f[4..6], &orig[4..6], "identification");
            assert_eq!(&f[8..10], &orig[8..10], "TTL and protocol");
            assert_eq!(&f[12..20], &orig[12..20], "addresses");
            let flags = field(f, 6);
            assert_eq!(flags & DF, 0);
            let last = k + 1 == pieces.len();
            let mf = flags & MF != 0;
            assert_eq!(mf, !last || oflags & MF != 0, "MF of piece {k}");
            let off = usize::from(flags & OFFSET_MASK) * 8;
            assert_eq!(
                off,
                usize::from(oflags & OFFSET_MASK) * 8 + data.len(),
                "offset of piece {k}"
            );
            if !last {
                assert_eq!((f.len() - ihl) % 8, 0, "piece {k} data is 8-byte units");
            }
            if k == 0 {
                assert_eq!(
                    &f[20..ihl],
                    &orig[20..oihl],
                    "first piece keeps all options"
                );
            }
            data.extend_from_slice(&f[ihl..]);
        }
        data
    }

    #[test]
    fn sizes_offsets_flags_checksums_and_data() {
        for (data_len, max) in [
            (1480, 1400),
            (1440, 1438),
            (3000, 1000),
            (1441, 1438),
            (9, 28),
        ] {
            let p = packet(&[], 0, data_len);
            let pieces = split(&p, max);
            let want = 1 + (data_len - (max - 20) / 8 * 8).div_ceil((max - 20) / 8 * 8);
            assert_eq!(pieces.len(), want, "{data_len} in {max}");
            assert_eq!(reassemble(&p, &pieces, max), &p[20..]);
            // Every piece but the last is as large as allowed.
            for f in &pieces[..pieces.len() - 1] {
                assert!(f.len() + 8 > max);
            }
        }
        let p = packet(&[], 0, 1480);
        let f = Fragmenter::new(&p, 1438).unwrap();
        assert_eq!((f.count(), f.piece_len(0), f.piece_len(1)), (2, 1436, 84));
    }

    #[test]
    fn already_fragmented_input_keeps_offsets_and_mf() {
        // A middle fragment (offset 185 × 8, MF): every piece has MF.
        let p = packet(&[], MF | 185, 1480);
        let pieces = split(&p, 700);
        assert_eq!(pieces.len(), 3);
        assert_eq!(reassemble(&p, &pieces, 700), &p[20..]);
        assert!(pieces.iter().all(|f| field(f, 6) & MF != 0));
        assert_eq!(field(&pieces[0], 6) & OFFSET_MASK, 185);
        // The last fragment of a datagram: the last piece ends it.
        let p = packet(&[], 370, 1000);
        let pieces = split(&p, 500);
        assert_eq!(reassemble(&p, &pieces, 500), &p[20..]);
        assert_eq!(field(pieces.last().unwrap(), 6) & MF, 0);
        // The reserved bit is kept.
        let p = packet(&[], RESERVED, 100);
        assert!(split(&p, 60).iter().all(|f| field(f, 6) & RESERVED != 0));
    }

    #[test]
    fn only_copied_options_go_into_later_pieces() {
        // Record route (7, not copied, 11 bytes), NOP, loose source route
        // (0x83, copied, 7 bytes), NOP, EOL-padded: 20 bytes of options.
        let mut opts = vec![7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        opts.extend_from_slice(&[0x83, 7, 4, 10, 1, 2, 2, 0]);
        assert_eq!(opts.len(), 20);
        let p = packet(&opts, 0, 1000);
        let pieces = split(&p, 400);
        assert_eq!(reassemble(&p, &pieces, 400), &p[40..]);
        assert_eq!(
            pieces[0][0] & 0x0f,
            10,
            "first piece keeps all 20 option bytes"
        );
        for f in &pieces[1..] {
            assert_eq!(f[0] & 0x0f, 7, "20 + 7 copied bytes + 1 pad");
            assert_eq!(&f[20..28], &[0x83, 7, 4, 10, 1, 2, 2, 0]);
        }
        // Only non-copied options: later pieces have a bare header.
        let p = packet(&[7, 3, 4, 0], 0, 200);
        let pieces = split(&p, 100);
        assert!(pieces[1..].iter().all(|f| f[0] == 0x45));
        assert_eq!(reassemble(&p, &pieces, 100), &p[24..]);
    }

    #[test]
    fn refusals_have_reasons() {
        let p = packet(&[], 0, 1000);
        // 27 bytes leave 7 data bytes behind a 20-byte header: not 8.
        assert_eq!(Fragmenter::new(&p, 27).unwrap_err(), FragError::TooSmall);
        assert_eq!(Fragmenter::new(&p, 28).unwrap().count(), 125);
        assert_eq!(Fragmenter::new(&p, 1020).unwrap_err(), FragError::Fits);
        assert_eq!(Fragmenter::new(&p, 0).unwrap_err(), FragError::TooSmall);
        let df = packet(&[], DF, 1000);
        assert_eq!(
            Fragmenter::new(&df, 500).unwrap_err(),
            FragError::DontFragment
        );
        // A copied option too long for the limit of later pieces.
        let mut opts = vec![0x83, 40];
        opts.extend_from_slice(&[0; 38]);
        let p = packet(&opts, 0, 100);
        assert_eq!(Fragmenter::new(&p, 67).unwrap_err(), FragError::TooSmall);
        assert!(
            Fragmenter::new(&p, 68).is_ok(),
            "RFC 791's 68 bytes always work"
        );
        // Malformed options and packets.
        let p = packet(&[0x83, 9, 0, 0], 0, 100);
        assert_eq!(Fragmenter::new(&p, 60).unwrap_err(), FragError::BadOptions);
        let p = packet(&[0x83, 1, 0, 0], 0, 100);
        assert_eq!(Fragmenter::new(&p, 60).unwrap_err(), FragError::BadOptions);
        let mut p = packet(&[], 0, 100);
        p[2..4].copy_from_slice(&200u16.to_be_bytes());
        assert_eq!(Fragmenter::new(&p, 60).unwrap_err(), FragError::Malformed);
        assert_eq!(
            Fragmenter::new(&p[..10], 60).unwrap_err(),
            FragError::Malformed
        );
        // The last piece's offset would not fit 13 bits.
        let p = packet(&[], 8180, 200);
        assert_eq!(Fragmenter::new(&p, 100).unwrap_err(), FragError::Malformed);
        // Out-of-range piece, short buffer.
        let p = packet(&[], 0, 100);
        let f = Fragmenter::new(&p, 60).unwrap();
        assert!(f.write(&p, f.count(), &mut [0u8; 100]).is_none());
        assert!(f.write(&p, 1, &mut [0u8; 10]).is_none());
    }

    #[test]
    fn minimum_sizes() {
        // 8 data bytes a piece, the smallest split there is.
        let p = packet(&[], 0, 17);
        let pieces = split(&p, 28);
        assert_eq!(
            pieces.iter().map(|f| f.len()).collect::<Vec<_>>(),
            vec![28, 28, 21]
        );
        assert_eq!(reassemble(&p, &pieces, 28), &p[20..]);
        // One byte over: two pieces, the second with one data byte.
        let p = packet(&[], 0, 9);
        let pieces = split(&p, 28);
        assert_eq!(
            pieces.iter().map(|f| f.len()).collect::<Vec<_>>(),
            vec![28, 21]
        );
    }
}
