#![deny(unsafe_code)]
//! espgw dataplane: zero-copy packet views, ESP encapsulation and decapsulation,
//! batch crypto, the shared-memory SA database and the AF_XDP workers.

pub mod crypto;
pub mod esp;
pub mod ios;
pub mod pcap;
pub mod sadb;
pub mod sys;
pub mod wire;
pub mod worker;
pub mod xdp;
