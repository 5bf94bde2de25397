//! The operator CLI: show/debug/clear/initiate over the control socket ([`api`]), the IOS
//! screens ([`show`]), and `espgw pcap` ([`pcap`]: runs espgw-dataplane's offline tool).

pub mod api;
pub mod command;
pub mod ezvpn;
pub mod pcap;
pub mod pki;
pub mod show;
pub mod views;

#[cfg(test)]
mod tests;
