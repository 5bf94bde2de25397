#![no_main]
//! The pcap reader returns typed errors on any input, never panics, and what it reads
//! writes back to the same packets.
use espgw_dataplane::pcap::{parse_pcap, PcapWriter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(pk) = parse_pcap(data) {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        for p in &pk {
            w.write_packet(p.ts_sec, p.ts_nsec, &p.data).unwrap();
        }
        let back = parse_pcap(&w.into_inner().unwrap()).unwrap();
        assert_eq!(back.len(), pk.len());
        for (a, b) in back.iter().zip(&pk) {
            assert_eq!(a.data, b.data);
        }
    }
});
