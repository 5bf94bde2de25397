//! `espgw-perf crypto`: ESP encapsulation and decapsulation throughput through the ESP
//! batch path (`encapsulate_batch` / `decapsulate_batch`), one core, against OpenSSL doing
//! the same crypto on the same bytes in the same run.

use std::net::Ipv4Addr;
#[cfg(feature = "openssl")]
use std::time::Duration;

use espgw_dataplane::crypto::transform::Transform;
use espgw_dataplane::esp::SaKeys;
#[cfg(feature = "openssl")]
use espgw_dataplane::esp::{
    decapsulate_batch, encapsulate_batch, DropCounters, EspContext, Frame, InboundSa, OutboundSa,
    ReplayWindow, SaParams,
};
use espgw_dataplane::wire::{IpProtocol, Ipv4Packet, Ipv4Repr};

#[cfg(feature = "openssl")]
use crate::clock::{compare, Candidate, Rate};
#[cfg(feature = "openssl")]
use crate::openssl_ref::Reference;
#[cfg(feature = "openssl")]
use espgw_dataplane::crypto::tdes::Level;

#[cfg(feature = "openssl")]
const LOCAL: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 10);
#[cfg(feature = "openssl")]
const REMOTE: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 20);
#[cfg(feature = "openssl")]
const SPI: u32 = 0x1000_0001;

/// An Ethernet frame carrying an IPv4 packet of `size` bytes in total.
pub(crate) fn inner_frame(size: usize, tag: u8) -> Vec<u8> {
    let size = size.max(20);
    let repr = Ipv4Repr {
        src: Ipv4Addr::new(10, 1, 1, 2),
        dst: Ipv4Addr::new(10, 1, 2, 2),
        protocol: IpProtocol::Unknown(253),
        payload_len: size - 20,
        ttl: 64,
        dscp_ecn: 0,
        ident: u16::from(tag),
        dont_frag: false,
        options: vec![],
    };
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00];
    f.resize(14 + repr.buffer_len(), 0);
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut f[14..]))
        .expect("emit inner header");
    for (i, b) in f[34..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(7).wrapping_add(tag);
    }
    f
}

pub(crate) fn keys(t: Transform) -> SaKeys {
    let enc: Vec<u8> = (0..t.enc_key_len())
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(3))
        .collect();
    let auth: Vec<u8> = (0..t.auth_key_len())
        .map(|i| (i as u8).wrapping_mul(13) ^ 0x5a)
        .collect();
    SaKeys::new(&enc, &auth)
}

#[cfg(feature = "openssl")]
#[derive(Debug, Clone)]
pub struct Result {
    pub transform: Transform,
    pub size: usize,
    pub batch: usize,
    pub encap: Rate,
    pub encap_openssl: Rate,
    pub decap: Rate,
    pub decap_openssl: Rate,
    /// Which OpenSSL HMAC form was faster (and used as the baseline).
    pub openssl_hmac: &'static str,
}

#[cfg(feature = "openssl")]
/// Picks the faster OpenSSL HMAC form for this workload (a short interleaved run).
pub(crate) fn faster_hmac(t: Transform, size: usize, batch: usize) -> bool {
    if t.auth_key_len() == 0 {
        return true;
    }
    let mut a = Reference::new(t, size, batch, true, true);
    let mut b = Reference::new(t, size, batch, true, false);
    let mut c = [
        Candidate {
            bytes: size * batch,
            packets: batch,
            run: Box::new(|| a.run()),
        },
        Candidate {
            bytes: size * batch,
            packets: batch,
            run: Box::new(|| b.run()),
        },
    ];
    let r = compare(Duration::from_millis(150), &mut c);
    r[0].bytes_per_s >= r[1].bytes_per_s
}

#[cfg(feature = "openssl")]
pub fn bench(t: Transform, size: usize, batch: usize, budget: Duration) -> Result {
    let hasher = faster_hmac(t, size, batch);
    let params = SaParams::tunnel(SPI, t, LOCAL, REMOTE);
    let k = keys(t);
    let out_sa = OutboundSa::new(params, &k).expect("outbound SA");
    let mut in_params = params;
    in_params.local = REMOTE;
    in_params.remote = LOCAL;
    let mut in_sa = InboundSa::new(in_params, &k).expect("inbound SA");
    let window = params.replay_window;

    // Pristine inner frames and, from them, pristine ESP frames.
    let inner: Vec<Vec<u8>> = (0..batch).map(|i| inner_frame(size, i as u8)).collect();
    let mut ctx = EspContext::new();
    let mut dc = DropCounters::default();
    let mut enc_frames: Vec<Frame<Vec<u8>>> = inner.iter().map(|f| Frame::with_room(f)).collect();
    let pristine_enc: Vec<(usize, usize, Vec<u8>)> = {
        let mut f: Vec<Frame<Vec<u8>>> = inner.iter().map(|f| Frame::with_room(f)).collect();
        let n = encapsulate_batch(&mut f, |_| Some(&out_sa), &mut ctx, &mut dc);
        assert_eq!(n, batch, "encapsulation dropped packets: {dc:?}");
        f.into_iter().map(|f| (f.head, f.len, f.buf)).collect()
    };
    let mut dec_frames: Vec<Frame<Vec<u8>>> = pristine_enc
        .iter()
        .map(|(h, l, b)| Frame::new(b.clone(), *h, *l))
        .collect();
    {
        let n = decapsulate_batch(
            &mut dec_frames,
            |spi| (spi == SPI).then_some(&in_sa),
            &mut dc,
        );
        assert_eq!(n, batch, "decapsulation dropped packets: {dc:?}");
        for (f, i) in dec_frames.iter().zip(&inner) {
            assert_eq!(
                f.data(),
                &i[..],
                "decapsulation does not restore the inner frame"
            );
        }
    }

    let bytes = size * batch;
    let mut os_enc = Reference::new(t, size, batch, true, hasher);
    let mut os_dec = Reference::new(t, size, batch, false, hasher);
    let mut dc2 = DropCounters::default();
    let frame_len = inner[0].len();
    let head0 = espgw_dataplane::esp::ENCAP_HEADROOM;
    let mut cands = vec![
        Candidate {
            bytes,
            packets: batch,
            run: Box::new(|| {
                for (f, src) in enc_frames.iter_mut().zip(&inner) {
                    f.head = head0;
                    f.len = frame_len;
                    f.buf[head0..head0 + frame_len].copy_from_slice(src);
                }
                let n = encapsulate_batch(&mut enc_frames, |_| Some(&out_sa), &mut ctx, &mut dc);
                debug_assert_eq!(n, batch);
            }),
        },
        Candidate {
            bytes,
            packets: batch,
            run: Box::new(|| os_enc.run()),
        },
        Candidate {
            bytes,
            packets: batch,
            run: Box::new(|| {
                for (f, (h, l, b)) in dec_frames.iter_mut().zip(&pristine_enc) {
                    f.head = *h;
                    f.len = *l;
                    f.buf[*h..*h + *l].copy_from_slice(&b[*h..*h + *l]);
                }
                in_sa.replay = ReplayWindow::new(window, false).expect("window");
                let n = decapsulate_batch(
                    &mut dec_frames,
                    |spi| (spi == SPI).then_some(&in_sa),
                    &mut dc2,
                );
                assert_eq!(n, batch);
            }),
        },
        Candidate {
            bytes,
            packets: batch,
            run: Box::new(|| os_dec.run()),
        },
    ];
    let r = compare(budget, &mut cands);
    Result {
        transform: t,
        size,
        batch,
        encap: r[0],
        encap_openssl: r[1],
        decap: r[2],
        decap_openssl: r[3],
        openssl_hmac: if t.auth_key_len() == 0 {
            "-"
        } else if hasher {
            "digest+pads"
        } else {
            "evp-signer"
        },
    }
}

#[cfg(feature = "openssl")]
impl Result {
    pub fn print(&self) {
        let t = self.transform.ios_name();
        for (dir, ours, os) in [
            ("encap", self.encap, self.encap_openssl),
            ("decap", self.decap, self.decap_openssl),
        ] {
            println!(
                "{t:26} {dir:5} {:5} {:3} {:11.1} {:7.2} {:13.1} {:7.2}   x{:.2}",
                self.size,
                self.batch,
                ours.mb_s(),
                ours.cycles_per_byte,
                os.mb_s(),
                os.cycles_per_byte,
                ours.bytes_per_s / os.bytes_per_s
            );
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "transform": self.transform.ios_name(),
            "size": self.size,
            "batch": self.batch,
            "encap": { "espgw": self.encap.json(), "openssl": self.encap_openssl.json(),
                       "ratio": (self.encap.bytes_per_s / self.encap_openssl.bytes_per_s * 100.0).round() / 100.0 },
            "decap": { "espgw": self.decap.json(), "openssl": self.decap_openssl.json(),
                       "ratio": (self.decap.bytes_per_s / self.decap_openssl.bytes_per_s * 100.0).round() / 100.0 },
            "openssl_hmac": self.openssl_hmac,
        })
    }
}

/// `espgw-perf crypto`'s options.
#[derive(clap::Args)]
#[cfg_attr(not(feature = "openssl"), allow(dead_code))]
pub struct CliOpts {
    /// IOS transform set, e.g. "esp-3des esp-md5-hmac".
    #[arg(long, default_value = "esp-3des esp-md5-hmac")]
    pub transform: String,
    /// Inner IPv4 packet size in bytes.
    #[arg(long, default_value_t = 1400)]
    pub size: usize,
    /// Packets per batch call.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Every transform x sizes 64/512/1400 x batch 1/64.
    #[arg(long)]
    pub all: bool,
    /// Seconds of measurement per configuration.
    #[arg(long, default_value_t = 1.0)]
    pub secs: f64,
    /// One JSON document on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Force every batch kernel's dispatch level (avx512, avx2, portable; lowered to
    /// what the CPU has). OpenSSL's baseline is held to the same SIMD level
    /// (OPENSSL_ia32cap) unless --openssl-native.
    #[arg(long)]
    pub level: Option<String>,
    /// With --level: let OpenSSL use everything this CPU has.
    #[arg(long)]
    pub openssl_native: bool,
}

/// What OpenSSL is told to leave alone so that its baseline runs at our forced level: for
/// `avx2`, AVX-512 (CPUID 7 EBX bits F, DQ, IFMA, CD, BW, VL); for `portable`, AVX and
/// AVX2 as well (AES-NI and SHA-NI stay: our portable level keeps them through the `aes`
/// and `sha1` crates).
#[cfg(feature = "openssl")]
fn openssl_cap_mask(level: Level) -> Option<&'static str> {
    match level {
        Level::Avx512 => None,
        Level::Avx2 => Some("~0x0:~0xd0230000"),
        Level::Portable => Some("~0x1000000000000000:~0xd0230020"),
    }
}

/// The environment variable OpenSSL reads its CPU capability mask from, at load time.
#[cfg(feature = "openssl")]
const IA32CAP: &str = "OPENSSL_ia32cap";

#[cfg(feature = "openssl")]
pub fn run_cli(o: &CliOpts) {
    use crate::clock;
    let forced = match o.level.as_deref() {
        None => None,
        Some(name) => match Level::from_name(name) {
            Some(l) => Some(l),
            None => {
                eprintln!("espgw-perf: --level: one of avx512, avx2, portable");
                std::process::exit(2);
            }
        },
    };
    if let Some(l) = forced {
        // OpenSSL reads its mask when the library loads: restart with it in the
        // environment (once; a mask the caller set is kept).
        if let (Some(mask), false, None) = (
            openssl_cap_mask(l.clamp()),
            o.openssl_native,
            std::env::var_os(IA32CAP),
        ) {
            use std::os::unix::process::CommandExt;
            let err = std::process::Command::new("/proc/self/exe")
                .args(std::env::args_os().skip(1))
                .env(IA32CAP, mask)
                .exec();
            eprintln!("espgw-perf: re-exec with {IA32CAP}: {err}");
            std::process::exit(2);
        }
        Level::force(Some(l));
    }
    let budget = Duration::from_secs_f64(o.secs);
    let configs: Vec<(Transform, usize, usize)> = if o.all {
        let mut v = Vec::new();
        for t in Transform::all() {
            for size in [64, 512, 1400] {
                for batch in [1, 64] {
                    v.push((t, size, batch));
                }
            }
        }
        v
    } else {
        match Transform::parse(&o.transform) {
            Ok(t) => vec![(t, o.size, o.batch)],
            Err(e) => {
                eprintln!("espgw-perf: --transform: {e}");
                std::process::exit(2);
            }
        }
    };
    if o.batch == 0 || o.size < 20 || o.secs <= 0.0 {
        eprintln!("espgw-perf: --batch must be >= 1, --size >= 20 (an IPv4 header), --secs > 0");
        std::process::exit(2);
    }
    let hz = clock::cpu_hz();
    let cap = std::env::var(IA32CAP).unwrap_or_else(|_| "unset (all it detects)".into());
    if !o.json {
        println!(
            "espgw-perf crypto: one core, {:.0} MHz nominal, kernels at level {} (CPU: {}), {}, {IA32CAP} {cap}; rates per CPU-second",
            hz / 1e6,
            Level::active().name(),
            Level::detect().name(),
            openssl::version::version(),
        );
        println!(
            "{:26} {:5} {:>5} {:>3} {:>11} {:>7} {:>13} {:>7} {:>7}",
            "transform", "dir", "size", "bat", "espgw MB/s", "c/B", "openssl MB/s", "c/B", "ratio"
        );
    }
    let mut results = Vec::new();
    for (t, size, batch) in configs {
        let r = bench(t, size, batch, budget);
        if !o.json {
            r.print();
        }
        results.push(r.json());
    }
    if o.json {
        let doc = serde_json::json!({
            "cpu_mhz": (hz / 1e6).round(),
            "level": Level::active().name(),
            "cpu_level": Level::detect().name(),
            "openssl_ia32cap": std::env::var(IA32CAP).ok(),
            "openssl": openssl::version::version(),
            "results": results,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap());
    }
}
