//! The operator CLI: show/debug/clear/initiate over the control socket, and the offline
//! `espgw pcap` tool.

pub mod pcap;
