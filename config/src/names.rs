//! The IOS name tables (protocols, TCP/UDP ports, ICMP messages): the parser reads the
//! names, the model prints them. Both sides depend on this file; neither on the other.

use crate::model::AclProtocol;

/// IP protocol names IOS accepts in access lists.
const PROTOCOLS: &[(&str, u8)] = &[
    ("ahp", 51),
    ("eigrp", 88),
    ("esp", 50),
    ("gre", 47),
    ("igmp", 2),
    ("ipinip", 94),
    ("nos", 4),
    ("ospf", 89),
    ("pcp", 108),
    ("pim", 103),
];

/// TCP port names IOS accepts (and prints).
const TCP_PORTS: &[(&str, u16)] = &[
    ("bgp", 179),
    ("chargen", 19),
    ("cmd", 514),
    ("daytime", 13),
    ("discard", 9),
    ("domain", 53),
    ("echo", 7),
    ("exec", 512),
    ("finger", 79),
    ("ftp", 21),
    ("ftp-data", 20),
    ("gopher", 70),
    ("hostname", 101),
    ("ident", 113),
    ("irc", 194),
    ("klogin", 543),
    ("kshell", 544),
    ("login", 513),
    ("lpd", 515),
    ("nntp", 119),
    ("pim-auto-rp", 496),
    ("pop2", 109),
    ("pop3", 110),
    ("smtp", 25),
    ("sunrpc", 111),
    ("tacacs", 49),
    ("talk", 517),
    ("telnet", 23),
    ("time", 37),
    ("uucp", 540),
    ("whois", 43),
    ("www", 80),
];

/// UDP port names IOS accepts (and prints).
const UDP_PORTS: &[(&str, u16)] = &[
    ("biff", 512),
    ("bootpc", 68),
    ("bootps", 67),
    ("discard", 9),
    ("dnsix", 195),
    ("domain", 53),
    ("echo", 7),
    ("isakmp", 500),
    ("mobile-ip", 434),
    ("nameserver", 42),
    ("netbios-dgm", 138),
    ("netbios-ns", 137),
    ("netbios-ss", 139),
    ("non500-isakmp", 4500),
    ("ntp", 123),
    ("pim-auto-rp", 496),
    ("rip", 520),
    ("snmp", 161),
    ("snmptrap", 162),
    ("sunrpc", 111),
    ("syslog", 514),
    ("tacacs", 49),
    ("talk", 517),
    ("tftp", 69),
    ("time", 37),
    ("who", 513),
    ("xdmcp", 177),
];

/// ICMP message names IOS accepts (type, code).
const ICMP_NAMES: &[(&str, u8, Option<u8>)] = &[
    ("echo", 8, None),
    ("echo-reply", 0, None),
    ("unreachable", 3, None),
    ("host-unreachable", 3, Some(1)),
    ("net-unreachable", 3, Some(0)),
    ("port-unreachable", 3, Some(3)),
    ("packet-too-big", 3, Some(4)),
    ("source-quench", 4, None),
    ("redirect", 5, None),
    ("time-exceeded", 11, None),
    ("ttl-exceeded", 11, Some(0)),
    ("parameter-problem", 12, None),
    ("timestamp-request", 13, None),
    ("timestamp-reply", 14, None),
];

/// The IOS name of a port, for printing (`eq www`).
pub fn port_name(protocol: AclProtocol, port: u16) -> Option<&'static str> {
    let table = match protocol {
        AclProtocol::Tcp => TCP_PORTS,
        AclProtocol::Udp => UDP_PORTS,
        _ => return None,
    };
    table.iter().find(|(_, p)| *p == port).map(|(n, _)| *n)
}

/// The IOS name of an ICMP type/code pair, for printing (`echo`).
pub fn icmp_name(ty: u8, code: Option<u8>) -> Option<&'static str> {
    ICMP_NAMES
        .iter()
        .find(|(_, t, c)| *t == ty && *c == code)
        .map(|(n, _, _)| *n)
}

/// The protocol number of an IOS protocol name (`esp` = 50); exact, lower case as IOS
/// prints them.
pub fn protocol_number(name: &str) -> Option<u8> {
    PROTOCOLS.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
}

/// The port of an IOS TCP or UDP port name (`www` = 80), any case.
pub fn port_number(protocol: AclProtocol, name: &str) -> Option<u16> {
    let table = if protocol == AclProtocol::Tcp {
        TCP_PORTS
    } else {
        UDP_PORTS
    };
    table
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, p)| *p)
}

/// The ICMP type and optional code of an IOS ICMP message name, any case.
pub fn icmp_number(name: &str) -> Option<(u8, Option<u8>)> {
    ICMP_NAMES
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, t, c)| (*t, *c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        for (n, p) in TCP_PORTS {
            assert_eq!(port_number(AclProtocol::Tcp, n), Some(*p));
            assert!(port_name(AclProtocol::Tcp, *p).is_some());
        }
        for (n, p) in UDP_PORTS {
            assert_eq!(port_number(AclProtocol::Udp, &n.to_uppercase()), Some(*p));
        }
        for (n, t, c) in ICMP_NAMES {
            assert_eq!(icmp_number(n), Some((*t, *c)));
            assert_eq!(icmp_name(*t, *c), Some(*n));
        }
        assert_eq!(protocol_number("esp"), Some(50));
        assert_eq!(protocol_number("nope"), None);
        assert_eq!(port_name(AclProtocol::Icmp, 80), None);
    }
}
