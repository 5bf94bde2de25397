//! `espgw-perf crypto`: ESP encapsulation and decapsulation throughput through the ESP
//! batch path (`encapsulate_batch` / `decapsulate_batch`), one core, against OpenSSL doing
//! the same crypto on the same bytes in the same run.

use std::net::Ipv4Addr;
use std::time::Duration;

use espgw_dataplane::crypto::transform::Transform;
use espgw_dataplane::esp::{
    decapsulate_batch, encapsulate_batch, DropCounters, EspContext, Frame, InboundSa, OutboundSa,
    ReplayWindow, SaKeys, SaParams,
};
use espgw_dataplane::wire::{IpProtocol, Ipv4Packet, Ipv4Repr};

use crate::clock::{compare, Candidate, Rate};
use crate::openssl_ref::Reference;

const LOCAL: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 10);
const REMOTE: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 20);
const SPI: u32 = 0x1000_0001;

/// An Ethernet frame carrying an IPv4 packet of `size` bytes in total.
fn inner_frame(size: usize, tag: u8) -> Vec<u8> {
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

fn keys(t: Transform) -> SaKeys {
    let enc: Vec<u8> = (0..t.enc_key_len())
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(3))
        .collect();
    let auth: Vec<u8> = (0..t.auth_key_len())
        .map(|i| (i as u8).wrapping_mul(13) ^ 0x5a)
        .collect();
    SaKeys::new(&enc, &auth)
}

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

/// Picks the faster OpenSSL HMAC form for this workload (a short interleaved run).
fn faster_hmac(t: Transform, size: usize, batch: usize) -> bool {
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

impl Result {
    pub fn print(&self) {
        let t = self.transform.ios_name();
        for (dir, ours, os) in [
            ("encap", self.encap, self.encap_openssl),
            ("decap", self.decap, self.decap_openssl),
        ] {
            println!(
                "{t:28} {dir} size {:4} batch {:2}: espgw {:8.1} MB/s {:6.2} c/B | openssl {:8.1} MB/s {:6.2} c/B | x{:.2}",
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
