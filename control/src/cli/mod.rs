//! The operator CLI: show/debug/clear/initiate over the control socket ([`api`]), the IOS
//! screens ([`show`]), and the offline `espgw pcap` tool.

pub mod api;
pub mod command;
pub mod pcap;
pub mod show;

#[cfg(test)]
mod tests;
