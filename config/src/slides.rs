//! The slides' configurations, verbatim (R1 as the slides print it, with their
//! trailing blanks; R2 its mirror image): fixtures for every crate's tests.

/// The slides' R1 configuration ("Basic IPsec Configuration", "Router Configurations"), as
/// the slides print it: two-space sub-lines, trailing blanks, `!` separators. Two things the
/// slide layout adds are not configuration and are undone here: the "←" callout arrow after
/// `crypto isakmp policy 1`, and the wrap of the access-list line across two slide lines.
pub const SLIDES_R1: &str = "crypto isakmp policy 1 \n  encr 3des  \n  authentication pre-share  \ncrypto isakmp key C!scO address 172.16.172.20  \n!  \ncrypto ipsec transform-set myset esp-3des esp-md5-hmac  \n!  \ncrypto map vpn 10 ipsec-isakmp  \n  set peer 172.16.172.20  \n  set transform-set myset  \n  match address 101\ninterface Ethernet0/0\n ip address 10.1.1.1 255.255.255.0\n!\ninterface Ethernet1/0\n ip address 172.16.172.10 255.255.255.240\n crypto map vpn\n!\naccess-list 101 permit ip 10.1.1.0 0.0.0.255 10.1.2.0 0.0.0.255\n";

/// R2, the mirror image of R1 in the same layout (the slides show R1 only).
pub const SLIDES_R2: &str = "crypto isakmp policy 1 \n  encr 3des  \n  authentication pre-share  \ncrypto isakmp key C!scO address 172.16.172.10  \n!  \ncrypto ipsec transform-set myset esp-3des esp-md5-hmac  \n!  \ncrypto map vpn 10 ipsec-isakmp  \n  set peer 172.16.172.10  \n  set transform-set myset  \n  match address 101\ninterface Ethernet0/0\n ip address 10.1.2.1 255.255.255.0\n!\ninterface Ethernet1/0\n ip address 172.16.172.20 255.255.255.240\n crypto map vpn\n!\naccess-list 101 permit ip 10.1.2.0 0.0.0.255 10.1.1.0 0.0.0.255\n";
