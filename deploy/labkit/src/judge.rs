//! tshark as the independent judge of the bytes on the wire.
//!
//! [`Capture::start`] records one interface of a lab node with `tcpdump --immediate-mode`;
//! [`judge`] runs tshark over any pcap (live capture or one written offline) with the ESP
//! SA keys and IKEv1 phase-1 keys it is given, and returns a [`Verdict`] per frame: for ESP
//! (plain or UDP-encapsulated on port 4500) the SPI, sequence number, whether it decrypted
//! and the ICV check; for ISAKMP the exchange type and whether it decrypted; for every
//! frame whether tshark found it malformed.
//!
//! tshark 4.0 names the transforms as [`EspEncr::tshark_name`] / [`EspAuth::tshark_name`]
//! return them. It decodes UDP port 4500 as `udpencap` (NAT-T: ESP, or IKE after a
//! non-ESP marker) by default; [`judge`] says so explicitly anyway.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::lab::{output_timeout, Lab, LabProcess, Node};

/// ESP encryption transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EspEncr {
    /// ESP_NULL.
    Null,
    /// 3DES-CBC (24-byte key).
    TripleDesCbc,
    /// DES-CBC (8-byte key).
    DesCbc,
    /// AES-CBC, 16/24/32-byte key.
    AesCbc,
    /// AES-CTR, key + 4-byte nonce.
    AesCtr,
    /// AES-GCM with an 8-byte ICV, key + 4-byte salt.
    AesGcm8,
    /// AES-GCM with a 12-byte ICV, key + 4-byte salt.
    AesGcm12,
    /// AES-GCM with a 16-byte ICV, key + 4-byte salt.
    AesGcm16,
}

impl EspEncr {
    /// The name tshark 4.0's `esp_sa` table uses.
    pub fn tshark_name(self) -> &'static str {
        match self {
            EspEncr::Null => "NULL",
            EspEncr::TripleDesCbc => "TripleDES-CBC [RFC2451]",
            EspEncr::DesCbc => "DES-CBC [RFC2405]",
            EspEncr::AesCbc => "AES-CBC [RFC3602]",
            EspEncr::AesCtr => "AES-CTR [RFC3686]",
            EspEncr::AesGcm8 => "AES-GCM with 8 octet ICV [RFC4106]",
            EspEncr::AesGcm12 => "AES-GCM with 12 octet ICV [RFC4106]",
            EspEncr::AesGcm16 => "AES-GCM with 16 octet ICV [RFC4106]",
        }
    }

    /// From strongSwan's algorithm name (`3DES_CBC`, `AES_CBC`, `AES_GCM_16`, …).
    pub fn from_strongswan(name: &str, _key_len: usize) -> Result<EspEncr> {
        Ok(match name {
            "NULL" | "ENCR_NULL" => EspEncr::Null,
            "3DES_CBC" => EspEncr::TripleDesCbc,
            "DES_CBC" => EspEncr::DesCbc,
            "AES_CBC" => EspEncr::AesCbc,
            "AES_CTR" => EspEncr::AesCtr,
            "AES_GCM_8" => EspEncr::AesGcm8,
            "AES_GCM_12" => EspEncr::AesGcm12,
            "AES_GCM_16" => EspEncr::AesGcm16,
            other => {
                return Err(Error::Invalid(format!(
                    "ESP encryption {other} has no tshark mapping here"
                )))
            }
        })
    }

    /// From the name tshark's `esp_sa` table uses (inverse of [`EspEncr::tshark_name`]).
    pub fn from_tshark_name(name: &str) -> Option<EspEncr> {
        [
            EspEncr::Null,
            EspEncr::TripleDesCbc,
            EspEncr::DesCbc,
            EspEncr::AesCbc,
            EspEncr::AesCtr,
            EspEncr::AesGcm8,
            EspEncr::AesGcm12,
            EspEncr::AesGcm16,
        ]
        .into_iter()
        .find(|e| e.tshark_name() == name)
    }

    /// Whether it is an AEAD (no separate integrity transform).
    pub fn is_aead(self) -> bool {
        matches!(
            self,
            EspEncr::AesGcm8 | EspEncr::AesGcm12 | EspEncr::AesGcm16
        )
    }
}

/// ESP integrity transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EspAuth {
    /// None (also for AEAD).
    Null,
    /// HMAC-MD5-96.
    HmacMd5_96,
    /// HMAC-SHA1-96.
    HmacSha1_96,
    /// HMAC-SHA-256-128.
    HmacSha256_128,
    /// HMAC-SHA-384-192.
    HmacSha384_192,
    /// HMAC-SHA-512-256.
    HmacSha512_256,
}

impl EspAuth {
    /// The name tshark 4.0's `esp_sa` table uses.
    pub fn tshark_name(self) -> &'static str {
        match self {
            EspAuth::Null => "NULL",
            EspAuth::HmacMd5_96 => "HMAC-MD5-96 [RFC2403]",
            EspAuth::HmacSha1_96 => "HMAC-SHA-1-96 [RFC2404]",
            EspAuth::HmacSha256_128 => "HMAC-SHA-256-128 [RFC4868]",
            EspAuth::HmacSha384_192 => "HMAC-SHA-384-192 [RFC4868]",
            EspAuth::HmacSha512_256 => "HMAC-SHA-512-256 [RFC4868]",
        }
    }

    /// From the name tshark's `esp_sa` table uses (inverse of [`EspAuth::tshark_name`]).
    pub fn from_tshark_name(name: &str) -> Option<EspAuth> {
        [
            EspAuth::Null,
            EspAuth::HmacMd5_96,
            EspAuth::HmacSha1_96,
            EspAuth::HmacSha256_128,
            EspAuth::HmacSha384_192,
            EspAuth::HmacSha512_256,
        ]
        .into_iter()
        .find(|a| a.tshark_name() == name)
    }

    /// From strongSwan's algorithm name (`HMAC_MD5_96`, …; `NONE` or empty for AEAD).
    pub fn from_strongswan(name: &str) -> Result<EspAuth> {
        Ok(match name {
            "" | "NONE" | "NULL" => EspAuth::Null,
            "HMAC_MD5_96" => EspAuth::HmacMd5_96,
            "HMAC_SHA1_96" => EspAuth::HmacSha1_96,
            "HMAC_SHA2_256_128" => EspAuth::HmacSha256_128,
            "HMAC_SHA2_384_192" => EspAuth::HmacSha384_192,
            "HMAC_SHA2_512_256" => EspAuth::HmacSha512_256,
            other => {
                return Err(Error::Invalid(format!(
                    "ESP integrity {other} has no tshark mapping here"
                )))
            }
        })
    }
}

/// Keys of one ESP SA (one direction), as the judge needs them.
#[derive(Clone, PartialEq, Eq)]
pub struct EspSaKeys {
    /// SPI on the wire.
    pub spi: u32,
    /// Outer source address (or `*`).
    pub src: String,
    /// Outer destination address (or `*`).
    pub dst: String,
    /// Encryption transform.
    pub encr: EspEncr,
    /// Encryption key (with the salt/nonce for GCM/CTR).
    pub enc_key: Vec<u8>,
    /// Integrity transform.
    pub auth: EspAuth,
    /// Integrity key.
    pub auth_key: Vec<u8>,
}

impl fmt::Debug for EspSaKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Test keys only, but keep them out of assertion messages anyway.
        f.debug_struct("EspSaKeys")
            .field("spi", &format_args!("{:#010x}", self.spi))
            .field("src", &self.src)
            .field("dst", &self.dst)
            .field("encr", &self.encr)
            .field("enc_key_len", &self.enc_key.len())
            .field("auth", &self.auth)
            .field("auth_key_len", &self.auth_key.len())
            .finish()
    }
}

impl EspSaKeys {
    /// The `uat:esp_sa` record for tshark.
    pub fn uat_record(&self) -> String {
        format!(
            "\"IPv4\",\"{}\",\"{}\",\"{:#010x}\",\"{}\",\"0x{}\",\"{}\",\"0x{}\"",
            self.src,
            self.dst,
            self.spi,
            self.encr.tshark_name(),
            hex(&self.enc_key),
            self.auth.tshark_name(),
            hex(&self.auth_key)
        )
    }

    /// A copy whose integrity key has its first bit flipped (negative controls).
    pub fn with_wrong_auth_key(&self) -> EspSaKeys {
        let mut k = self.clone();
        if let Some(b) = k.auth_key.first_mut() {
            *b ^= 0x80;
        }
        k
    }
}

/// IKEv1 phase-1 keys for tshark's `ikev1_decryption_table`.
#[derive(Clone, PartialEq, Eq)]
pub struct Ikev1Keys {
    /// Initiator cookie.
    pub icookie: [u8; 8],
    /// Responder cookie.
    pub rcookie: [u8; 8],
    /// Encryption key Ka.
    pub enc_key: Vec<u8>,
}

impl fmt::Debug for Ikev1Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ikev1Keys")
            .field("icookie", &hex(&self.icookie))
            .field("rcookie", &hex(&self.rcookie))
            .field("enc_key_len", &self.enc_key.len())
            .finish()
    }
}

impl Ikev1Keys {
    /// The `uat:ikev1_decryption_table` record for tshark (unquoted hex).
    pub fn uat_record(&self) -> String {
        format!("{},{}", hex(&self.icookie), hex(&self.enc_key))
    }
}

/// Parses a key log in tshark's own record syntax, as `espgw-control --keylog` writes it:
/// `ikev1 ICOOKIEHEX,KAHEX` and `esp "IPv4","SRC","DST","0xSPI","ENCR","0xKEY","AUTH","0xKEY"`
/// lines; anything else is skipped. (The responder cookie is not in such a log: zero.)
pub fn parse_keylog(text: &str) -> (Vec<EspSaKeys>, Vec<Ikev1Keys>) {
    let unhex = |s: &str| -> Option<Vec<u8>> {
        let s = s.trim().trim_start_matches("0x");
        if !s.len().is_multiple_of(2) {
            return None;
        }
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
            .collect()
    };
    let mut esp = Vec::new();
    let mut ike = Vec::new();
    for line in text.lines() {
        if let Some(r) = line.strip_prefix("ikev1 ") {
            let Some((c, k)) = r.split_once(',') else {
                continue;
            };
            if let (Some(c), Some(k)) = (unhex(c), unhex(k)) {
                if let Ok(icookie) = <[u8; 8]>::try_from(c.as_slice()) {
                    ike.push(Ikev1Keys {
                        icookie,
                        rcookie: [0; 8],
                        enc_key: k,
                    });
                }
            }
        } else if let Some(r) = line.strip_prefix("esp ") {
            let f: Vec<&str> = r.trim().trim_matches('"').split("\",\"").collect();
            if f.len() != 8 || f[0] != "IPv4" {
                continue;
            }
            let spi = u32::from_str_radix(f[3].trim_start_matches("0x"), 16).ok();
            let (encr, auth) = (
                EspEncr::from_tshark_name(f[4]),
                EspAuth::from_tshark_name(f[6]),
            );
            if let (Some(spi), Some(encr), Some(auth), Some(enc_key), Some(auth_key)) =
                (spi, encr, auth, unhex(f[5]), unhex(f[7]))
            {
                esp.push(EspSaKeys {
                    spi,
                    src: f[1].into(),
                    dst: f[2].into(),
                    encr,
                    enc_key,
                    auth,
                    auth_key,
                });
            }
        }
    }
    (esp, ike)
}

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// A running `tcpdump` on one interface of a lab node, writing a pcap.
#[derive(Debug)]
pub struct Capture {
    proc: LabProcess,
    path: PathBuf,
}

impl Capture {
    /// Captures everything on `iface` of `node` into a pcap in the lab's directory; returns
    /// once tcpdump is listening.
    pub fn start(lab: &Lab, node: Node, iface: &str) -> Result<Capture> {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = lab.dir().join(format!("capture-{node}-{iface}-{n}.pcap"));
        Capture::start_to(lab, node, iface, &path, None)
    }

    /// Captures on `iface` of `node` into `path`, with an optional BPF `filter`.
    pub fn start_to(
        lab: &Lab,
        node: Node,
        iface: &str,
        path: &Path,
        filter: Option<&str>,
    ) -> Result<Capture> {
        let path_s = path.to_string_lossy().into_owned();
        let mut args = vec![
            "tcpdump",
            "--immediate-mode",
            "-U",
            "-n",
            "-Z",
            "root",
            "-s",
            "0",
            "-i",
            iface,
            "-w",
            &path_s,
        ];
        if let Some(f) = filter {
            args.push(f);
        }
        let mut proc = lab.spawn(node, &args)?;
        let mut ok = false;
        let wait = lab.wait_for(
            &format!("tcpdump on {node}/{iface} to listen"),
            Duration::from_secs(20),
            || {
                if !proc.is_running() {
                    return true;
                }
                ok = proc.log().contains("listening on");
                ok
            },
        );
        if !ok {
            return Err(proc.died_at_start(
                &format!("tcpdump on {node}/{iface} did not start ({wait:?})"),
                &[],
            ));
        }
        Ok(Capture {
            proc,
            path: path.to_path_buf(),
        })
    }

    /// The pcap file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// tcpdump's PID.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Stops tcpdump (it flushes the file) and returns the pcap's path. The file lives in
    /// the lab's directory: copy it if it must outlive the lab.
    pub fn stop(mut self) -> Result<PathBuf> {
        let _ = self.proc.signal("INT");
        let st = self.proc.wait_timeout(Duration::from_secs(10))?;
        if st.is_none() {
            self.proc.stop();
        }
        Ok(self.path.clone())
    }
}

/// ICV check result of one ESP frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Icv {
    /// tshark computed the ICV and it matched.
    Good,
    /// tshark computed the ICV and it did not match.
    Bad,
    /// No check (no keys for the SPI, NULL integrity, or the check is off).
    Unchecked,
}

/// What tshark said about one ESP frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EspVerdict {
    /// SPI.
    pub spi: u32,
    /// Sequence number.
    pub seq: u32,
    /// Carried in UDP (NAT-T, RFC 3948).
    pub udp_encap: bool,
    /// The payload decrypted to a plausible inner packet (tshark dissected the padding
    /// trailer and an inner protocol).
    pub decrypted: bool,
    /// The ICV check.
    pub icv: Icv,
    /// Inner source and destination address, when an inner IPv4 packet was dissected.
    pub inner: Option<(String, String)>,
}

/// What tshark said about one ISAKMP frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsakmpVerdict {
    /// Exchange type (2 Main/Identity Protection, 4 Aggressive, 5 Informational, 32 Quick
    /// Mode, 6 Transaction).
    pub exchange: u8,
    /// Initiator cookie, 16 hex digits.
    pub icookie: String,
    /// Message ID.
    pub message_id: u32,
    /// The encryption flag was set.
    pub encrypted: bool,
    /// tshark decrypted the payloads: it dissected payloads, among them a HASH or (phase 1
    /// with signatures: MM5, MM6, AM3) a SIG, and found nothing malformed (tshark has no
    /// explicit "decrypted" field for IKEv1).
    pub decrypted: bool,
    /// Sent on port 4500 after a non-ESP marker.
    pub nat_t: bool,
    /// The frame is the last of a message's IKE fragments (Cisco-style, payload 132) and
    /// the fields above describe the message tshark reassembled from them, not the
    /// fragment's own (always unencrypted) header. The other fragments are frames with
    /// only payload 132, unencrypted.
    pub reassembled: bool,
}

/// What a frame was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// ESP (raw or in UDP).
    Esp(EspVerdict),
    /// ISAKMP (on 500, or on 4500 behind the marker).
    Isakmp(IsakmpVerdict),
    /// A NAT-T keepalive (0xFF).
    NatKeepalive,
    /// Anything else (ARP, plain ICMP, …).
    Other,
}

/// tshark's verdict on one frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Frame number (1-based).
    pub number: u32,
    /// `frame.protocols`, e.g. `eth:ethertype:ip:udp:udpencap:esp:ip:icmp`.
    pub protocols: String,
    /// The dissection.
    pub kind: FrameKind,
    /// tshark flagged the frame as malformed.
    pub malformed: bool,
    /// For an ISAKMP frame that repeats an earlier one byte for byte (same addresses,
    /// same UDP payload): the earlier frame's number. tshark's IKEv1 decryption follows
    /// the CBC IV chain through every frame it sees, so it cannot decrypt a retransmission
    /// and often calls it malformed; its content was judged with the original.
    pub retransmission_of: Option<u32>,
}

/// All frames of one pcap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdicts {
    /// In capture order.
    pub frames: Vec<Verdict>,
}

impl Verdicts {
    /// The ESP frames.
    pub fn esp(&self) -> impl Iterator<Item = (&Verdict, &EspVerdict)> {
        self.frames.iter().filter_map(|f| match &f.kind {
            FrameKind::Esp(e) => Some((f, e)),
            _ => None,
        })
    }
    /// The ISAKMP messages: every ISAKMP frame except retransmissions (see
    /// [`Verdict::retransmission_of`]).
    pub fn isakmp(&self) -> impl Iterator<Item = (&Verdict, &IsakmpVerdict)> {
        self.isakmp_all()
            .filter(|(f, _)| f.retransmission_of.is_none())
    }
    /// Every ISAKMP frame, retransmissions included.
    pub fn isakmp_all(&self) -> impl Iterator<Item = (&Verdict, &IsakmpVerdict)> {
        self.frames.iter().filter_map(|f| match &f.kind {
            FrameKind::Isakmp(i) => Some((f, i)),
            _ => None,
        })
    }
    /// ISAKMP retransmissions: (frame, the frame it repeats).
    pub fn retransmissions(&self) -> impl Iterator<Item = (&Verdict, u32)> {
        self.frames
            .iter()
            .filter_map(|f| f.retransmission_of.map(|o| (f, o)))
    }
    /// Number of malformed frames, not counting ISAKMP retransmissions (tshark cannot
    /// decrypt those; their bytes equal a frame that is judged).
    pub fn malformed(&self) -> usize {
        self.frames
            .iter()
            .filter(|f| f.malformed && f.retransmission_of.is_none())
            .count()
    }
    /// ESP frames that did not decrypt or whose ICV was not good, or malformed ones.
    pub fn bad_esp(&self) -> Vec<&Verdict> {
        self.esp()
            .filter(|(f, e)| f.malformed || !e.decrypted || e.icv != Icv::Good)
            .map(|(f, _)| f)
            .collect()
    }
    /// A one-line-per-frame summary for assertion messages.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for f in &self.frames {
            let _ = match &f.kind {
                FrameKind::Esp(e) => writeln!(
                    s,
                    "#{} ESP spi={:#010x} seq={} udp={} decrypted={} icv={:?} inner={:?}{}",
                    f.number,
                    e.spi,
                    e.seq,
                    e.udp_encap,
                    e.decrypted,
                    e.icv,
                    e.inner,
                    if f.malformed { " MALFORMED" } else { "" }
                ),
                FrameKind::Isakmp(i) => writeln!(
                    s,
                    "#{} ISAKMP exch={} icookie={} mid={:#x} enc={} decrypted={} natt={}{}{}{}",
                    f.number,
                    i.exchange,
                    i.icookie,
                    i.message_id,
                    i.encrypted,
                    i.decrypted,
                    i.nat_t,
                    if i.reassembled { " (reassembled)" } else { "" },
                    if f.malformed { " MALFORMED" } else { "" },
                    f.retransmission_of
                        .map(|o| format!(" (retransmission of #{o})"))
                        .unwrap_or_default()
                ),
                FrameKind::NatKeepalive => writeln!(s, "#{} NAT-keepalive", f.number),
                FrameKind::Other => writeln!(
                    s,
                    "#{} {}{}",
                    f.number,
                    f.protocols,
                    if f.malformed { " MALFORMED" } else { "" }
                ),
            };
        }
        s
    }
}

/// The fields [`judge`] asks tshark for, in column order.
const FIELDS: &[&str] = &[
    "frame.number",
    "frame.protocols",
    "_ws.malformed",
    "ip.src",
    "ip.dst",
    "esp.spi",
    "esp.sequence",
    "esp.icv_good",
    "esp.icv_bad",
    "esp.pad_len",
    "esp.protocol",
    "isakmp.exchangetype",
    "isakmp.ispi",
    "isakmp.messageid",
    "isakmp.flags",
    "isakmp.typepayload",
    "isakmp.hash",
    "isakmp.sig",
    "isakmp.enc.data",
    "udpencap.non_esp_marker",
    "udpencap.nat_keepalive",
    "udp.length",
];

/// The protocols whose heuristic dissectors this tshark tries on UDP payloads
/// (`tshark -G heuristic-decodes`), asked once; never ISAKMP, ESP or UDP
/// encapsulation, which the judge reads.
fn udp_heuristics() -> &'static [String] {
    static LIST: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    LIST.get_or_init(|| {
        let out = Command::new("tshark")
            .args(["-G", "heuristic-decodes"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        out.lines()
            .filter_map(|l| {
                let mut f = l.split('\t');
                match (f.next(), f.next()) {
                    (Some("udp"), Some(name)) if !["isakmp", "esp", "udpencap"].contains(&name) => {
                        Some(name.to_string())
                    }
                    _ => None,
                }
            })
            .collect::<std::collections::BTreeSet<String>>()
            .into_iter()
            .collect()
    })
}

/// The tshark command line [`judge`] runs (useful to reproduce a verdict by hand).
pub fn tshark_command(pcap: &Path, esp: &[EspSaKeys], ike: &[Ikev1Keys]) -> Command {
    let mut c = Command::new("tshark");
    c.arg("-r")
        .arg(pcap)
        .args(["-n", "-d", "udp.port==4500,udpencap"]);
    c.args([
        "-o",
        "esp.enable_encryption_decode:TRUE",
        "-o",
        "esp.enable_authentication_check:TRUE",
    ]);
    // We judge ESP, not what it carries. tshark dissects the decrypted payload
    // before it adds the ICV verdict, so an exception in an inner dissector (TCP
    // reassembly seeing a retransmission overlap when the capture dropped frames
    // under iperf3 load, a heuristic such as Thrift misreading iperf3 bytes)
    // makes a good frame read as undecrypted and malformed. Outer TCP never
    // carries what we judge (IKE and NAT-T are UDP), so TCP is off, and so are
    // the protocols tshark guesses at in UDP payloads.
    c.args(["--disable-protocol", "tcp"]);
    for h in udp_heuristics() {
        c.arg("--disable-protocol").arg(h);
    }
    for k in esp {
        c.arg("-o").arg(format!("uat:esp_sa:{}", k.uat_record()));
    }
    for k in ike {
        c.arg("-o")
            .arg(format!("uat:ikev1_decryption_table:{}", k.uat_record()));
    }
    c.args([
        "-T",
        "fields",
        "-E",
        "separator=\t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
        "-E",
        "header=n",
    ]);
    for f in FIELDS {
        c.args(["-e", f]);
    }
    c
}

/// Runs tshark over `pcap` with the given keys and returns its verdict on every frame.
/// Works on any pcap (live capture or written offline); hundreds of frames take well under
/// a second of tshark time.
pub fn judge(pcap: &Path, esp: &[EspSaKeys], ike: &[Ikev1Keys]) -> Result<Verdicts> {
    let home = tempfile::tempdir().map_err(|e| Error::io("creating tshark's HOME", e))?;
    let stdout = run_tshark(tshark_command(pcap, esp, ike), home.path(), pcap)?;
    let (mut v, candidates) = parse_fields(&stdout)?;
    mark_retransmissions(&mut v, &candidates, pcap, home.path())?;
    Ok(v)
}

/// Runs tshark with a private, empty HOME (no user preferences) and returns stdout.
fn run_tshark(mut c: Command, home: &Path, pcap: &Path) -> Result<String> {
    c.env("HOME", home)
        .env("XDG_CONFIG_HOME", home)
        .stdin(Stdio::null());
    let out = output_timeout(c, Duration::from_secs(300))?;
    if !out.status.success() {
        return Err(Error::Command {
            cmd: format!("tshark -r {}", pcap.display()),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// ISAKMP frames that look alike (addresses, UDP length, cookie, exchange, message ID)
/// are compared byte for byte in a second, key-less tshark pass (run only when there are
/// such frames); a repeat gets `retransmission_of` = the first frame with those bytes.
fn mark_retransmissions(
    v: &mut Verdicts,
    candidates: &[(u32, String)],
    pcap: &Path,
    home: &Path,
) -> Result<()> {
    let mut groups: std::collections::HashMap<&str, Vec<u32>> = std::collections::HashMap::new();
    for (n, key) in candidates {
        groups.entry(key.as_str()).or_default().push(*n);
    }
    let suspects: std::collections::BTreeSet<u32> = groups
        .values()
        .filter(|g| g.len() > 1)
        .flatten()
        .copied()
        .collect();
    if suspects.is_empty() {
        return Ok(());
    }
    let mut c = Command::new("tshark");
    c.arg("-r")
        .arg(pcap)
        .args(["-n", "-d", "udp.port==4500,udpencap", "-Y", "isakmp"]);
    c.args([
        "-T",
        "fields",
        "-E",
        "occurrence=f",
        "-e",
        "frame.number",
        "-e",
        "udp.payload",
    ]);
    let out = run_tshark(c, home, pcap)?;
    let mut payload: std::collections::HashMap<u32, String> = std::collections::HashMap::new();
    for line in out.lines() {
        if let Some((n, p)) = line.split_once('\t') {
            if let Ok(n) = n.trim().parse::<u32>() {
                if suspects.contains(&n) {
                    payload.insert(n, p.trim().to_string());
                }
            }
        }
    }
    for g in groups.values().filter(|g| g.len() > 1) {
        for (i, n) in g.iter().enumerate() {
            let Some(p) = payload.get(n) else { continue };
            let orig = g[..i].iter().find(|m| payload.get(m) == Some(p));
            if let (Some(&orig), Some(f)) = (orig, v.frames.iter_mut().find(|f| f.number == *n)) {
                f.retransmission_of = Some(orig);
            }
        }
    }
    Ok(())
}

/// Parses the `-T fields` output; also returns, for every ISAKMP frame, a key under which
/// a retransmission would collide.
fn parse_fields(text: &str) -> Result<(Verdicts, Vec<(u32, String)>)> {
    let mut v = Verdicts::default();
    let mut candidates = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let col = |name: &str| -> &str {
            FIELDS
                .iter()
                .position(|f| *f == name)
                .and_then(|i| cols.get(i).copied())
                .unwrap_or("")
        };
        let number = col("frame.number")
            .parse()
            .map_err(|_| Error::parse("tshark fields", line.to_string()))?;
        let protocols = col("frame.protocols").to_string();
        let malformed =
            !col("_ws.malformed").is_empty() || protocols.split(':').any(|p| p == "_ws.malformed");
        let first = |name: &str| col(name).split(',').next().unwrap_or("").to_string();
        let kind = if !col("esp.spi").is_empty() {
            let srcs: Vec<&str> = col("ip.src").split(',').collect();
            let dsts: Vec<&str> = col("ip.dst").split(',').collect();
            let inner = match (srcs.get(1), dsts.get(1)) {
                (Some(s), Some(d)) => Some((s.to_string(), d.to_string())),
                _ => None,
            };
            let icv = if truthy(col("esp.icv_good")) {
                Icv::Good
            } else if truthy(col("esp.icv_bad")) {
                Icv::Bad
            } else {
                Icv::Unchecked
            };
            FrameKind::Esp(EspVerdict {
                spi: parse_u32(&first("esp.spi")).unwrap_or(0),
                seq: parse_u32(&first("esp.sequence")).unwrap_or(0),
                udp_encap: protocols.contains("udpencap"),
                decrypted: !col("esp.pad_len").is_empty() && !col("esp.protocol").is_empty(),
                icv,
                inner,
            })
        } else if !col("isakmp.exchangetype").is_empty() {
            // After the last IKE fragment tshark dissects the reassembled message as a
            // second ISAKMP header in the same frame: the message is the last header.
            let last = |name: &str| col(name).rsplit(',').next().unwrap_or("").to_string();
            let reassembled = col("isakmp.exchangetype").contains(',');
            let flags = parse_u32(&last("isakmp.flags")).unwrap_or(0);
            let encrypted = flags & 1 != 0;
            FrameKind::Isakmp(IsakmpVerdict {
                exchange: parse_u32(&last("isakmp.exchangetype")).unwrap_or(0) as u8,
                icookie: last("isakmp.ispi").trim_start_matches("0x").to_string(),
                message_id: parse_u32(&last("isakmp.messageid")).unwrap_or(0),
                encrypted,
                // tshark adds no "decrypted" field: decrypted payloads show as payload
                // types and, in every encrypted IKEv1 message, a HASH, or in phase 1
                // authenticated with signatures a SIG (RFC 2409 §5.1: MM5, MM6, AM3).
                decrypted: encrypted
                    && !col("isakmp.typepayload").is_empty()
                    && (!col("isakmp.hash").is_empty() || !col("isakmp.sig").is_empty())
                    && !malformed,
                nat_t: !col("udpencap.non_esp_marker").is_empty(),
                reassembled,
            })
        } else if !col("udpencap.nat_keepalive").is_empty() {
            FrameKind::NatKeepalive
        } else {
            FrameKind::Other
        };
        if let FrameKind::Isakmp(i) = &kind {
            let key = format!(
                "{}>{} {} {} {} {}",
                first("ip.src"),
                first("ip.dst"),
                first("udp.length"),
                i.icookie,
                i.exchange,
                i.message_id
            );
            candidates.push((number, key));
        }
        v.frames.push(Verdict {
            number,
            protocols,
            kind,
            malformed,
            retransmission_of: None,
        });
    }
    Ok((v, candidates))
}

fn truthy(s: &str) -> bool {
    s.split(',')
        .any(|x| matches!(x.trim(), "1" | "True" | "true"))
}

fn parse_u32(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cols: &[(&str, &str)]) -> String {
        FIELDS
            .iter()
            .map(|f| {
                cols.iter()
                    .find(|(k, _)| k == f)
                    .map(|(_, v)| *v)
                    .unwrap_or("")
            })
            .collect::<Vec<_>>()
            .join("\t")
    }

    #[test]
    fn fields_output_parses() {
        let text = [
            row(&[
                ("frame.number", "1"),
                (
                    "frame.protocols",
                    "eth:ethertype:ip:udp:udpencap:esp:ip:icmp",
                ),
                ("ip.src", "172.16.172.10,10.1.1.2"),
                ("ip.dst", "172.16.172.20,10.1.2.2"),
                ("esp.spi", "0x4a449037"),
                ("esp.sequence", "7"),
                ("esp.icv_good", "1"),
                ("esp.pad_len", "2"),
                ("esp.protocol", "4"),
            ]),
            row(&[
                ("frame.number", "2"),
                ("frame.protocols", "eth:ethertype:ip:udp:udpencap:isakmp"),
                ("ip.src", "172.16.172.20"),
                ("ip.dst", "172.16.172.10"),
                ("isakmp.exchangetype", "32"),
                ("isakmp.ispi", "cb4c764f95809f09"),
                ("isakmp.messageid", "0x71f06a3c"),
                ("isakmp.flags", "0x01"),
                ("isakmp.typepayload", "8,1,10"),
                ("isakmp.hash", "abcd"),
                ("udpencap.non_esp_marker", "0"),
                ("udp.length", "200"),
            ]),
            row(&[
                ("frame.number", "3"),
                ("frame.protocols", "eth:ethertype:ip:esp:_ws.malformed"),
                ("esp.spi", "0x00000001"),
                ("esp.icv_bad", "1"),
            ]),
        ]
        .join("\n");
        let (v, cands) = parse_fields(&text).unwrap();
        assert_eq!(v.frames.len(), 3);
        let FrameKind::Esp(e) = &v.frames[0].kind else {
            panic!()
        };
        assert_eq!(
            (e.spi, e.seq, e.udp_encap, e.decrypted, e.icv),
            (0x4a449037, 7, true, true, Icv::Good)
        );
        assert_eq!(e.inner, Some(("10.1.1.2".into(), "10.1.2.2".into())));
        let FrameKind::Isakmp(i) = &v.frames[1].kind else {
            panic!()
        };
        assert_eq!(
            (i.exchange, i.message_id, i.encrypted, i.decrypted, i.nat_t),
            (32, 0x71f06a3c, true, true, true)
        );
        assert_eq!(i.icookie, "cb4c764f95809f09");
        assert_eq!(cands.len(), 1);
        let FrameKind::Esp(e) = &v.frames[2].kind else {
            panic!()
        };
        assert_eq!((e.icv, e.decrypted), (Icv::Bad, false));
        assert!(v.frames[2].malformed);
        assert_eq!(v.malformed(), 1);
        assert_eq!(v.bad_esp().len(), 1);
        assert!(parse_fields("x\ty").is_err());
    }

    /// A Main Mode MM5 with signatures in three IKE fragments, as tshark 4.0 prints it: the
    /// third fragment's frame also holds the reassembled, decrypted message (ID CERT SIG
    /// N, no HASH).
    #[test]
    fn reassembled_signature_message_reads_as_decrypted() {
        let frag = |n: &str| {
            row(&[
                ("frame.number", n),
                ("frame.protocols", "eth:ethertype:ip:udp:isakmp"),
                ("isakmp.exchangetype", "2"),
                ("isakmp.ispi", "cb4c764f95809f09"),
                ("isakmp.messageid", "0x00000000"),
                ("isakmp.flags", "0x00"),
                ("isakmp.typepayload", "132"),
            ])
        };
        let text = [
            frag("7"),
            frag("8"),
            row(&[
                ("frame.number", "9"),
                ("frame.protocols", "eth:ethertype:ip:udp:isakmp"),
                ("isakmp.exchangetype", "2,2"),
                ("isakmp.ispi", "cb4c764f95809f09,cb4c764f95809f09"),
                ("isakmp.messageid", "0x00000000,0x00000000"),
                ("isakmp.flags", "0x00,0x01"),
                ("isakmp.typepayload", "132,5,6,9,11"),
                ("isakmp.sig", "1acc9f4e"),
            ]),
        ]
        .join("\n");
        let (v, _) = parse_fields(&text).unwrap();
        let isakmp: Vec<_> = v.isakmp().map(|(_, i)| i.clone()).collect();
        assert_eq!(isakmp.len(), 3);
        assert!(isakmp[..2]
            .iter()
            .all(|i| !i.encrypted && !i.reassembled && i.exchange == 2));
        let m = &isakmp[2];
        assert_eq!(
            (m.exchange, m.encrypted, m.decrypted, m.reassembled),
            (2, true, true, true)
        );
        // Without the SIG (nothing dissected inside) it is not decrypted.
        let (v, _) = parse_fields(&text.replace("1acc9f4e", "")).unwrap();
        assert!(v.isakmp().all(|(_, i)| !i.decrypted));
    }

    #[test]
    fn uat_records_have_tshark_syntax() {
        let k = EspSaKeys {
            spi: 0x4a449037,
            src: "172.16.172.10".into(),
            dst: "172.16.172.20".into(),
            encr: EspEncr::TripleDesCbc,
            enc_key: vec![0xab; 24],
            auth: EspAuth::HmacMd5_96,
            auth_key: vec![0x01; 16],
        };
        let r = k.uat_record();
        assert!(r.starts_with("\"IPv4\",\"172.16.172.10\",\"172.16.172.20\",\"0x4a449037\",\"TripleDES-CBC [RFC2451]\",\"0xabab"), "{r}");
        assert!(
            r.ends_with("\"HMAC-MD5-96 [RFC2403]\",\"0x01010101010101010101010101010101\""),
            "{r}"
        );
        assert_ne!(k.with_wrong_auth_key().auth_key, k.auth_key);
        let i = Ikev1Keys {
            icookie: [1; 8],
            rcookie: [2; 8],
            enc_key: vec![3; 24],
        };
        assert_eq!(
            i.uat_record(),
            format!("0101010101010101,{}", "03".repeat(24))
        );
        assert!(
            !format!("{k:?}{i:?}").contains("abab"),
            "keys stay out of Debug output"
        );
    }
}
