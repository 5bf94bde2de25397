//! The shared-memory SA database region as garbage: header validation, record decoding,
//! SPI index, counters, sa_request ring and request table (see `sadb::fuzzing`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    espgw_sadb::fuzzing::exercise(data);
});
