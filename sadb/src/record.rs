//! The SA record: what control pushes for each SA, and its fixed 192-byte encoding.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::layout::RECORD_BYTES;
use super::transform::TransformId;

/// Direction of an SA, seen from this gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// We decrypt with it; looked up by SPI.
    Inbound,
    /// We encrypt with it; looked up by crypto-map entry, peer and proxies.
    Outbound,
}

/// ESP mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Tunnel,
    Transport,
}

/// An IPv4 network as IOS writes it in a crypto ACL: address and (contiguous) mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Prefix {
    pub addr: Ipv4Addr,
    pub mask: Ipv4Addr,
}

impl Ipv4Prefix {
    /// `addr/len`. Lengths above 32 are clamped to 32.
    pub fn new(addr: Ipv4Addr, len: u8) -> Ipv4Prefix {
        let len = u32::from(len.min(32));
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        Ipv4Prefix {
            addr,
            mask: Ipv4Addr::from(mask),
        }
    }
    /// A single host (mask 255.255.255.255).
    pub fn host(addr: Ipv4Addr) -> Ipv4Prefix {
        Ipv4Prefix::new(addr, 32)
    }
    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let m = u32::from(self.mask);
        u32::from(ip) & m == u32::from(self.addr) & m
    }
    /// Prefix length of the mask (the mask is contiguous in every stored record).
    pub fn prefix_len(&self) -> u8 {
        u32::from(self.mask).leading_ones() as u8
    }
}

/// The proxy identities (Quick Mode IDs) of an SA: the traffic it protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProxyIdentity {
    pub local: Ipv4Prefix,
    pub remote: Ipv4Prefix,
    /// IP protocol, 0 = any.
    pub protocol: u8,
    /// 0 = any.
    pub local_port: u16,
    /// 0 = any.
    pub remote_port: u16,
}

impl ProxyIdentity {
    /// Whether a packet from `src` to `dst` (from our protected network towards the peer's)
    /// is traffic of this SA: the addresses lie in the local and remote networks, and the
    /// protocol and ports match where the identity names them (0 = any). `ports` is
    /// (source, destination), `None` for packets without ports (other protocols, non-first
    /// fragments), which only an identity that names no port covers.
    pub fn covers(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: u8,
        ports: Option<(u16, u16)>,
    ) -> bool {
        let (sp, dp) = ports.unwrap_or((0, 0));
        self.local.contains(src)
            && self.remote.contains(dst)
            && (self.protocol == 0 || self.protocol == protocol)
            && (self.local_port == 0 || self.local_port == sp)
            && (self.remote_port == 0 || self.remote_port == dp)
    }
}

/// An SPI as IOS prints it (`show crypto ipsec sa`, the dataplane's crypto log): upper-case
/// hex after `0x`, then the decimal value in parentheses, e.g. `0x3F9A1A49(1067063881)`.
pub fn ios_spi(spi: u32) -> String {
    format!("0x{spi:X}({spi})")
}

/// A crypto-map name, at most [`MapName::MAX`] bytes of printable ASCII.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MapName {
    len: u8,
    bytes: [u8; MapName::MAX],
}

impl MapName {
    /// Longest name that fits the record.
    pub const MAX: usize = 31;

    /// `None` if `name` is longer than [`MapName::MAX`] or not printable ASCII.
    pub fn new(name: &str) -> Option<MapName> {
        let b = name.as_bytes();
        if b.len() > Self::MAX || !b.iter().all(|c| c.is_ascii_graphic()) {
            return None;
        }
        let mut bytes = [0u8; Self::MAX];
        bytes[..b.len()].copy_from_slice(b);
        Some(MapName {
            len: b.len() as u8,
            bytes,
        })
    }
    /// The name.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (checked in `new` and in decoding).
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub(crate) fn raw(&self) -> (u8, &[u8; Self::MAX]) {
        (self.len, &self.bytes)
    }
}

impl fmt::Debug for MapName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for MapName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Key material of up to `N` bytes. Zeroed on drop; `Debug` prints only the length.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Key<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> Key<N> {
    /// `None` if `key` is longer than `N`.
    pub fn new(key: &[u8]) -> Option<Key<N>> {
        if key.len() > N {
            return None;
        }
        let mut bytes = [0u8; N];
        bytes[..key.len()].copy_from_slice(key);
        Some(Key {
            len: key.len() as u8,
            bytes,
        })
    }
    /// No key (length 0), for `esp-null` or AEAD transforms without an auth key.
    pub fn empty() -> Key<N> {
        Key {
            len: 0,
            bytes: [0u8; N],
        }
    }
    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
    pub fn len(&self) -> usize {
        self.len as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<const N: usize> fmt::Debug for Key<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(<{} bytes redacted>)", self.len)
    }
}

/// Encryption key: up to 36 bytes (AES-256 key + 4-byte GCM salt; 3DES is 24).
pub type EncKey = Key<36>;
/// Authentication key: up to 32 bytes (HMAC-SHA-256; MD5 16, SHA-1 20).
pub type AuthKey = Key<32>;

/// One SA as control installs it and workers read it back.
///
/// Keys are zeroed when the record is dropped and never printed by `Debug`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaRecord {
    pub spi: u32,
    pub direction: Direction,
    pub mode: Mode,
    /// Our outer address; the UDP port is used with `udp_encap` (4500, or 500).
    pub local: SocketAddrV4,
    /// The peer's outer address; its UDP port (after NAT) is used with `udp_encap`.
    pub peer: SocketAddrV4,
    /// ESP in UDP (RFC 3948, NAT-T).
    pub udp_encap: bool,
    /// Extended (64-bit) sequence numbers (RFC 4304).
    pub esn: bool,
    pub proxy: ProxyIdentity,
    /// The ESP transform (stored as [`TransformId::code`]).
    pub transform: TransformId,
    pub enc_key: EncKey,
    pub auth_key: AuthKey,
    /// Lifetime in seconds, 0 = none.
    pub lifetime_secs: u64,
    /// Lifetime in kilobytes, 0 = none.
    pub lifetime_kb: u64,
    /// Anti-replay window in packets, 0 = replay detection disabled.
    pub replay_window: u32,
    pub crypto_map: MapName,
    pub crypto_map_seq: u32,
    /// IOS `conn id` shown by `show crypto ipsec sa`.
    pub conn_id: u32,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: u64,
}

/// Byte ranges of the fields in the encoded record.
mod field {
    use std::ops::Range;
    pub const SPI: Range<usize> = 0..4;
    pub const DIRECTION: usize = 4;
    pub const MODE: usize = 5;
    pub const FLAGS: usize = 6;
    pub const ENC_KEY_LEN: usize = 7;
    pub const AUTH_KEY_LEN: usize = 8;
    pub const PROXY_PROTOCOL: usize = 9;
    pub const TRANSFORM: Range<usize> = 10..12;
    pub const LOCAL_ADDR: Range<usize> = 12..16;
    pub const PEER_ADDR: Range<usize> = 16..20;
    pub const LOCAL_PORT: Range<usize> = 20..22;
    pub const PEER_PORT: Range<usize> = 22..24;
    pub const PROXY_LOCAL_ADDR: Range<usize> = 24..28;
    pub const PROXY_LOCAL_MASK: Range<usize> = 28..32;
    pub const PROXY_REMOTE_ADDR: Range<usize> = 32..36;
    pub const PROXY_REMOTE_MASK: Range<usize> = 36..40;
    pub const PROXY_LOCAL_PORT: Range<usize> = 40..42;
    pub const PROXY_REMOTE_PORT: Range<usize> = 42..44;
    pub const REPLAY_WINDOW: Range<usize> = 44..48;
    pub const LIFETIME_SECS: Range<usize> = 48..56;
    pub const LIFETIME_KB: Range<usize> = 56..64;
    pub const CONN_ID: Range<usize> = 64..68;
    pub const MAP_SEQ: Range<usize> = 68..72;
    pub const CREATED_AT: Range<usize> = 72..80;
    pub const MAP_NAME_LEN: usize = 80;
    pub const MAP_NAME: Range<usize> = 81..112;
    pub const ENC_KEY: Range<usize> = 112..148;
    pub const AUTH_KEY: Range<usize> = 148..180;
    pub const RESERVED: Range<usize> = 180..192;
}

/// The bytes of an encoded record that hold key material (both keys): what must be wiped
/// from every transient copy.
pub(crate) const SECRET_BYTES: std::ops::Range<usize> = field::ENC_KEY.start..field::AUTH_KEY.end;

const FLAG_UDP_ENCAP: u8 = 1;
const FLAG_ESN: u8 = 2;

/// Why stored record bytes do not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordError(pub &'static str);

fn mask_ok(m: u32) -> bool {
    m.leading_ones() + m.trailing_zeros() == 32
}

fn rd_u16(b: &[u8], r: std::ops::Range<usize>) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[r]);
    u16::from_le_bytes(a)
}
fn rd_u32(b: &[u8], r: std::ops::Range<usize>) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[r]);
    u32::from_le_bytes(a)
}
fn rd_u64(b: &[u8], r: std::ops::Range<usize>) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[r]);
    u64::from_le_bytes(a)
}
fn rd_ip(b: &[u8], r: std::ops::Range<usize>) -> Ipv4Addr {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[r]);
    Ipv4Addr::from(a)
}

impl SaRecord {
    /// Checks the fields that the encoding cannot represent or that no SA may have.
    pub fn check(&self) -> Result<(), RecordError> {
        if !mask_ok(u32::from(self.proxy.local.mask)) {
            return Err(RecordError("proxy local mask not contiguous"));
        }
        if !mask_ok(u32::from(self.proxy.remote.mask)) {
            return Err(RecordError("proxy remote mask not contiguous"));
        }
        Ok(())
    }

    /// Encodes into the fixed record bytes. The caller zeroizes `out` after use.
    pub fn encode(&self, out: &mut [u8; RECORD_BYTES]) -> Result<(), RecordError> {
        self.check()?;
        out.fill(0);
        out[field::SPI].copy_from_slice(&self.spi.to_le_bytes());
        out[field::DIRECTION] = match self.direction {
            Direction::Inbound => 1,
            Direction::Outbound => 2,
        };
        out[field::MODE] = match self.mode {
            Mode::Tunnel => 1,
            Mode::Transport => 2,
        };
        out[field::FLAGS] = (if self.udp_encap { FLAG_UDP_ENCAP } else { 0 })
            | (if self.esn { FLAG_ESN } else { 0 });
        out[field::ENC_KEY_LEN] = self.enc_key.len;
        out[field::AUTH_KEY_LEN] = self.auth_key.len;
        out[field::PROXY_PROTOCOL] = self.proxy.protocol;
        out[field::TRANSFORM].copy_from_slice(&self.transform.code().to_le_bytes());
        out[field::LOCAL_ADDR].copy_from_slice(&self.local.ip().octets());
        out[field::PEER_ADDR].copy_from_slice(&self.peer.ip().octets());
        out[field::LOCAL_PORT].copy_from_slice(&self.local.port().to_le_bytes());
        out[field::PEER_PORT].copy_from_slice(&self.peer.port().to_le_bytes());
        out[field::PROXY_LOCAL_ADDR].copy_from_slice(&self.proxy.local.addr.octets());
        out[field::PROXY_LOCAL_MASK].copy_from_slice(&self.proxy.local.mask.octets());
        out[field::PROXY_REMOTE_ADDR].copy_from_slice(&self.proxy.remote.addr.octets());
        out[field::PROXY_REMOTE_MASK].copy_from_slice(&self.proxy.remote.mask.octets());
        out[field::PROXY_LOCAL_PORT].copy_from_slice(&self.proxy.local_port.to_le_bytes());
        out[field::PROXY_REMOTE_PORT].copy_from_slice(&self.proxy.remote_port.to_le_bytes());
        out[field::REPLAY_WINDOW].copy_from_slice(&self.replay_window.to_le_bytes());
        out[field::LIFETIME_SECS].copy_from_slice(&self.lifetime_secs.to_le_bytes());
        out[field::LIFETIME_KB].copy_from_slice(&self.lifetime_kb.to_le_bytes());
        out[field::CONN_ID].copy_from_slice(&self.conn_id.to_le_bytes());
        out[field::MAP_SEQ].copy_from_slice(&self.crypto_map_seq.to_le_bytes());
        out[field::CREATED_AT].copy_from_slice(&self.created_at.to_le_bytes());
        let (nlen, name) = self.crypto_map.raw();
        out[field::MAP_NAME_LEN] = nlen;
        out[field::MAP_NAME].copy_from_slice(name);
        out[field::ENC_KEY].copy_from_slice(&self.enc_key.bytes);
        out[field::AUTH_KEY].copy_from_slice(&self.auth_key.bytes);
        Ok(())
    }

    /// Decodes record bytes, checking every field. Never panics.
    pub fn decode(b: &[u8; RECORD_BYTES]) -> Result<SaRecord, RecordError> {
        let direction = match b[field::DIRECTION] {
            1 => Direction::Inbound,
            2 => Direction::Outbound,
            _ => return Err(RecordError("direction")),
        };
        let mode = match b[field::MODE] {
            1 => Mode::Tunnel,
            2 => Mode::Transport,
            _ => return Err(RecordError("mode")),
        };
        let flags = b[field::FLAGS];
        if flags & !(FLAG_UDP_ENCAP | FLAG_ESN) != 0 {
            return Err(RecordError("flags"));
        }
        let enc_len = b[field::ENC_KEY_LEN] as usize;
        let auth_len = b[field::AUTH_KEY_LEN] as usize;
        if enc_len > field::ENC_KEY.len() {
            return Err(RecordError("encryption key length"));
        }
        if auth_len > field::AUTH_KEY.len() {
            return Err(RecordError("authentication key length"));
        }
        let enc = &b[field::ENC_KEY];
        let auth = &b[field::AUTH_KEY];
        if enc[enc_len..].iter().any(|&x| x != 0) || auth[auth_len..].iter().any(|&x| x != 0) {
            return Err(RecordError("bytes after key"));
        }
        let nlen = b[field::MAP_NAME_LEN] as usize;
        let name = &b[field::MAP_NAME];
        if nlen > MapName::MAX
            || !name[..nlen].iter().all(|c| c.is_ascii_graphic())
            || name[nlen..].iter().any(|&x| x != 0)
        {
            return Err(RecordError("crypto map name"));
        }
        if b[field::RESERVED].iter().any(|&x| x != 0) {
            return Err(RecordError("reserved bytes"));
        }
        let mut map_bytes = [0u8; MapName::MAX];
        map_bytes.copy_from_slice(name);
        let rec = SaRecord {
            spi: rd_u32(b, field::SPI),
            direction,
            mode,
            local: SocketAddrV4::new(rd_ip(b, field::LOCAL_ADDR), rd_u16(b, field::LOCAL_PORT)),
            peer: SocketAddrV4::new(rd_ip(b, field::PEER_ADDR), rd_u16(b, field::PEER_PORT)),
            udp_encap: flags & FLAG_UDP_ENCAP != 0,
            esn: flags & FLAG_ESN != 0,
            proxy: ProxyIdentity {
                local: Ipv4Prefix {
                    addr: rd_ip(b, field::PROXY_LOCAL_ADDR),
                    mask: rd_ip(b, field::PROXY_LOCAL_MASK),
                },
                remote: Ipv4Prefix {
                    addr: rd_ip(b, field::PROXY_REMOTE_ADDR),
                    mask: rd_ip(b, field::PROXY_REMOTE_MASK),
                },
                protocol: b[field::PROXY_PROTOCOL],
                local_port: rd_u16(b, field::PROXY_LOCAL_PORT),
                remote_port: rd_u16(b, field::PROXY_REMOTE_PORT),
            },
            transform: TransformId::from_code(rd_u16(b, field::TRANSFORM))
                .ok_or(RecordError("transform"))?,
            enc_key: Key::new(&enc[..enc_len]).ok_or(RecordError("encryption key length"))?,
            auth_key: Key::new(&auth[..auth_len])
                .ok_or(RecordError("authentication key length"))?,
            lifetime_secs: rd_u64(b, field::LIFETIME_SECS),
            lifetime_kb: rd_u64(b, field::LIFETIME_KB),
            replay_window: rd_u32(b, field::REPLAY_WINDOW),
            crypto_map: MapName {
                len: nlen as u8,
                bytes: map_bytes,
            },
            crypto_map_seq: rd_u32(b, field::MAP_SEQ),
            conn_id: rd_u32(b, field::CONN_ID),
            created_at: rd_u64(b, field::CREATED_AT),
        };
        rec.check()?;
        Ok(rec)
    }

    /// A record whose every field (keys included) is derived from `v`; tests use it to
    /// detect torn reads: [`SaRecord::derived_value`] returns `Some(v)` only for an
    /// untorn copy. SPI and direction depend only on the upper 32 bits, so records with
    /// the same upper half may replace each other with [`super::SaDbWriter::update`].
    #[doc(hidden)]
    pub fn derived(v: u64) -> SaRecord {
        let b = v.to_le_bytes();
        let k = |salt: u8, n: usize| -> Vec<u8> {
            (0..n).map(|i| b[i % 8] ^ salt ^ (i as u8)).collect()
        };
        let ip = |salt: u8| Ipv4Addr::new(10, b[0] ^ salt, b[1], b[2]);
        SaRecord {
            spi: ((v >> 32) as u32) | 0x100,
            direction: if v & (1 << 32) == 0 {
                Direction::Inbound
            } else {
                Direction::Outbound
            },
            mode: if v & 2 == 0 {
                Mode::Tunnel
            } else {
                Mode::Transport
            },
            local: SocketAddrV4::new(ip(1), (v >> 3) as u16),
            peer: SocketAddrV4::new(ip(2), (v >> 5) as u16),
            udp_encap: v & 4 != 0,
            esn: v & 8 != 0,
            proxy: ProxyIdentity {
                local: Ipv4Prefix::new(ip(3), (v % 33) as u8),
                remote: Ipv4Prefix::new(ip(4), ((v >> 8) % 33) as u8),
                protocol: b[3],
                local_port: (v >> 16) as u16,
                remote_port: (v >> 24) as u16,
            },
            transform: TransformId::ALL[((v >> 7) % TransformId::COUNT as u64) as usize],
            enc_key: EncKey::new(&k(0x5a, 36)).expect("36 bytes"),
            auth_key: AuthKey::new(&k(0xa5, 32)).expect("32 bytes"),
            lifetime_secs: v.wrapping_mul(3),
            lifetime_kb: v.wrapping_mul(5),
            replay_window: (v as u32).wrapping_mul(7),
            crypto_map: MapName::new(&format!("map-{v:x}")).expect("short name"),
            crypto_map_seq: (v >> 32) as u32 ^ 0x55,
            conn_id: (v as u32) ^ 0xaaaa,
            created_at: v,
        }
    }

    /// A tunnel-mode ESP-NULL/HMAC-SHA-1 SA from `local` to `peer` carrying `proxy`'s
    /// traffic, on crypto map `vpn` entry `seq` (conn id `seq`), 3600 s, window 64: for
    /// tests and benchmarks that need many SAs cheaply (no cipher key to expand).
    #[doc(hidden)]
    pub fn null_sha(
        spi: u32,
        direction: Direction,
        (local, peer): (SocketAddrV4, SocketAddrV4),
        proxy: ProxyIdentity,
        seq: u32,
        auth_key: &[u8; 20],
    ) -> SaRecord {
        SaRecord {
            spi,
            direction,
            mode: Mode::Tunnel,
            local,
            peer,
            udp_encap: false,
            esn: false,
            proxy,
            transform: TransformId::EspNullSha,
            enc_key: EncKey::new(&[]).expect("empty key"),
            auth_key: AuthKey::new(auth_key).expect("20 bytes"),
            lifetime_secs: 3600,
            lifetime_kb: 4_608_000,
            replay_window: 64,
            crypto_map: MapName::new("vpn").expect("short name"),
            crypto_map_seq: seq,
            conn_id: seq,
            created_at: 1,
        }
    }

    /// [`SaRecord::derived`] of `v` with its halves mixed (so small `v`s get distinct
    /// SPIs), turned to `direction`. For tests.
    #[doc(hidden)]
    pub fn derived_towards(v: u64, direction: Direction) -> SaRecord {
        SaRecord {
            direction,
            ..SaRecord::derived(v.rotate_left(32) ^ v)
        }
    }

    /// `Some(v)` if this record equals `SaRecord::derived(v)` for `v = created_at`.
    #[doc(hidden)]
    pub fn derived_value(&self) -> Option<u64> {
        (*self == SaRecord::derived(self.created_at)).then_some(self.created_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for v in [0u64, 1, 2, 0xffff, 0x1234_5678_9abc_def0, u64::MAX] {
            let r = SaRecord::derived(v);
            let mut buf = [0u8; RECORD_BYTES];
            r.encode(&mut buf).unwrap();
            let back = SaRecord::decode(&buf).unwrap();
            assert_eq!(back, r);
            assert_eq!(back.derived_value(), Some(v));
        }
    }

    #[test]
    fn debug_redacts_keys() {
        let mut r = SaRecord::derived(7);
        r.enc_key = EncKey::new(&[0xde, 0xad, 0xbe, 0xef]).unwrap();
        let s = format!("{r:?}");
        assert!(s.contains("redacted"));
        assert!(
            !s.contains("222") && !s.contains("0xde") && !s.contains("173"),
            "{s}"
        );
    }

    #[test]
    fn key_zeroize() {
        let mut k = EncKey::new(&[1, 2, 3]).unwrap();
        k.zeroize();
        assert_eq!(k.as_bytes(), &[] as &[u8]);
        assert!(EncKey::new(&[0u8; 37]).is_none());
        assert!(AuthKey::new(&[0u8; 32]).is_some());
    }

    #[test]
    fn decode_rejects_bad_fields() {
        let r = SaRecord::derived(99);
        let mut good = [0u8; RECORD_BYTES];
        r.encode(&mut good).unwrap();
        let cases: &[(usize, u8, &str)] = &[
            (field::DIRECTION, 3, "direction"),
            (field::MODE, 0, "mode"),
            (field::FLAGS, 0x80, "flags"),
            (field::ENC_KEY_LEN, 37, "encryption key length"),
            (field::AUTH_KEY_LEN, 33, "authentication key length"),
            (field::MAP_NAME_LEN, 32, "crypto map name"),
            (field::RESERVED.start, 1, "reserved bytes"),
            (field::TRANSFORM.start, 0xff, "transform"),
            (
                field::PROXY_LOCAL_MASK.start,
                0x0f,
                "proxy local mask not contiguous",
            ),
        ];
        for &(off, val, why) in cases {
            let mut b = good;
            b[off] = val;
            assert_eq!(SaRecord::decode(&b), Err(RecordError(why)), "offset {off}");
        }
        let mut b = good;
        b[field::ENC_KEY_LEN] = 4;
        assert_eq!(SaRecord::decode(&b), Err(RecordError("bytes after key")));
    }

    #[test]
    fn map_name_rules() {
        assert_eq!(MapName::new("VPN-MAP").unwrap().as_str(), "VPN-MAP");
        assert!(MapName::new("has space").is_none());
        assert!(MapName::new(&"x".repeat(32)).is_none());
        assert!(MapName::new(&"x".repeat(31)).is_some());
    }

    #[test]
    fn proxy_covers() {
        let net = |a: u8, b: u8| Ipv4Prefix::new(Ipv4Addr::new(10, a, b, 0), 24);
        let any = ProxyIdentity {
            local: net(1, 1),
            remote: net(1, 2),
            protocol: 0,
            local_port: 0,
            remote_port: 0,
        };
        let (a, b) = (Ipv4Addr::new(10, 1, 1, 2), Ipv4Addr::new(10, 1, 2, 2));
        assert!(any.covers(a, b, 1, None));
        assert!(any.covers(a, b, 6, Some((1024, 80))));
        assert!(!any.covers(b, a, 1, None), "the other direction");
        let web = ProxyIdentity {
            protocol: 6,
            remote_port: 80,
            ..any
        };
        assert!(web.covers(a, b, 6, Some((1024, 80))));
        assert!(!web.covers(a, b, 6, Some((1024, 443))));
        assert!(!web.covers(a, b, 17, Some((1024, 80))));
        assert!(!web.covers(a, b, 6, None), "a fragment without ports");
    }

    #[test]
    fn spi_as_ios_prints_it() {
        assert_eq!(ios_spi(0x3F9A1A49), "0x3F9A1A49(1067063881)");
        assert_eq!(ios_spi(0), "0x0(0)");
    }

    #[test]
    fn prefix() {
        let p = Ipv4Prefix::new(Ipv4Addr::new(10, 1, 1, 0), 24);
        assert_eq!(p.mask, Ipv4Addr::new(255, 255, 255, 0));
        assert!(p.contains(Ipv4Addr::new(10, 1, 1, 77)));
        assert!(!p.contains(Ipv4Addr::new(10, 1, 2, 1)));
        assert_eq!(p.prefix_len(), 24);
        assert_eq!(Ipv4Prefix::new(Ipv4Addr::UNSPECIFIED, 0).prefix_len(), 0);
    }
}
