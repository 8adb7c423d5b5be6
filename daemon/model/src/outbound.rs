//! Which servers meetings may reach (`meeting.allowed_servers`): deny by default.
//!
//! A target's host must match a pattern of the list: a host name (`janus.example.org`), a
//! wildcard for the names below a domain (`*.example.org`), an address (`192.0.2.10`,
//! `2001:db8::10`) or a network (`10.20.0.0/16`). The check is repeated on every address the
//! name resolves to: an address that is not public (loopback, private, link-local, shared,
//! unique-local, multicast, unspecified) passes only when an address or network pattern covers
//! it. A listed name that some DNS answer points at the room's own network is thus refused.
//!
//! The meetings' HTTPS client applies it in its resolver (`roomd_meetings::outbound_resolver`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The key people set; every refusal names it.
pub const KEY: &str = "meeting.allowed_servers";
/// A bound on the list: it is matched for every connection.
pub const MAX_PATTERNS: usize = 64;

/// One entry of `meeting.allowed_servers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Exactly this name (lower case, without a trailing dot).
    Name(String),
    /// Any name ending in `.suffix` (the pattern `*.suffix`), not `suffix` itself.
    Below(String),
    /// Addresses whose first `prefix` bits equal `network`'s.
    Network {
        /// The address given (host bits are kept but not compared).
        network: IpAddr,
        /// Leading bits compared: 0..=32 for IPv4, 0..=128 for IPv6; a bare address is a /32
        /// or /128.
        prefix: u8,
    },
}

impl HostPattern {
    /// Parses one entry; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let text = text.trim();
        if let Some((address, prefix)) = text.split_once('/') {
            let network: IpAddr = address
                .parse()
                .map_err(|_| format!("{text:?}: {address:?} before the / is not an IP address"))?;
            let max = if network.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix
                .parse()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {max}"))?;
            return Ok(HostPattern::Network { network, prefix });
        }
        if let Ok(address) = text.trim_start_matches('[').trim_end_matches(']').parse() {
            let prefix = if matches!(address, IpAddr::V4(_)) {
                32
            } else {
                128
            };
            return Ok(HostPattern::Network {
                network: address,
                prefix,
            });
        }
        let (below, name) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if !is_dns_name(&name) {
            return Err(format!(
                "{text:?} is not a host name, *.domain, IP address or address/prefix"
            ));
        }
        Ok(if below {
            HostPattern::Below(name)
        } else {
            HostPattern::Name(name)
        })
    }

    fn matches_name(&self, name: &str) -> bool {
        match self {
            HostPattern::Name(n) => n == name,
            HostPattern::Below(suffix) => name
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            HostPattern::Network { .. } => false,
        }
    }

    fn matches_address(&self, address: IpAddr) -> bool {
        let HostPattern::Network { network, prefix } = self else {
            return false;
        };
        match (canonical(*network), canonical(address)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                same_prefix(n.to_bits().into(), a.to_bits().into(), *prefix, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => same_prefix(n.to_bits(), a.to_bits(), *prefix, 128),
            _ => false,
        }
    }
}

fn same_prefix(a: u128, b: u128, prefix: u8, width: u32) -> bool {
    let prefix = u32::from(prefix).min(width);
    if prefix == 0 {
        return true;
    }
    let shift = width - prefix;
    (a >> shift) == (b >> shift)
}

fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is that IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Whether `address` belongs to this site or machine rather than the public internet: such
/// addresses are reached only when a pattern lists them.
pub fn is_internal(address: IpAddr) -> bool {
    match canonical(address) {
        IpAddr::V4(a) => is_internal_v4(a),
        IpAddr::V6(a) => is_internal_v6(a),
    }
}

fn is_internal_v4(a: Ipv4Addr) -> bool {
    let [first, second, ..] = a.octets();
    a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_multicast()
        || first == 0
        // 100.64.0.0/10: carrier-grade NAT, shared between customers of a provider.
        || (first == 100 && (64..128).contains(&second))
        // 198.18.0.0/15: benchmarking; 240.0.0.0/4: reserved.
        || (first == 198 && (second == 18 || second == 19))
        || first >= 240
}

fn is_internal_v6(a: Ipv6Addr) -> bool {
    let first = a.segments()[0];
    a.is_loopback()
        || a.is_unspecified()
        || a.is_multicast()
        // fc00::/7 unique local, fe80::/10 link-local, fec0::/10 old site-local.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        // ::/96 (IPv4-compatible, deprecated): never a real server.
        || a.segments()[..6].iter().all(|s| *s == 0)
}

/// Why a target is not reached.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refusal {
    #[error(
        "{host} is not in {KEY}: the device reaches only the meeting servers and rooms listed \
         there (add the host name, *.domain, address or address/prefix to [meeting] \
         allowed_servers in the configuration file)"
    )]
    /// No entry names the host (or covers the address literal).
    NotListed {
        /// The host as given.
        host: String,
    },
    #[error(
        "{host} resolves to {address}, an address of the local network or machine that {KEY} \
         does not list (add the address or its network, e.g. {address}/32, to [meeting] \
         allowed_servers in the configuration file if the server really is there)"
    )]
    /// The host resolved to a loopback, private, link-local or otherwise internal address that
    /// no address or network entry covers.
    InternalAddress {
        /// The host as given.
        host: String,
        /// The refused address (an IPv4-mapped IPv6 address shown as IPv4).
        address: IpAddr,
    },
}

/// The parsed `meeting.allowed_servers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    patterns: Vec<HostPattern>,
}

impl OutboundPolicy {
    /// The policy of a list of entries; an entry that does not parse is an error naming it.
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Result<OutboundPolicy, String> {
        let patterns = entries
            .iter()
            .map(|e| HostPattern::parse(e.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(OutboundPolicy { patterns })
    }

    /// Whether the host of a URL (a name, or an address literal, IPv6 with or without
    /// brackets) is listed.
    pub fn check_host(&self, host: &str) -> Result<(), Refusal> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let listed = match bare.parse::<IpAddr>() {
            Ok(address) => self.patterns.iter().any(|p| p.matches_address(address)),
            Err(_) => {
                let name = bare.trim_end_matches('.').to_ascii_lowercase();
                self.patterns.iter().any(|p| p.matches_name(&name))
            }
        };
        if listed {
            Ok(())
        } else {
            Err(Refusal::NotListed {
                host: host.to_owned(),
            })
        }
    }

    /// Whether `host` may be reached at `address` (one of its resolved addresses).
    pub fn check_address(&self, host: &str, address: IpAddr) -> Result<(), Refusal> {
        if is_internal(address) && !self.patterns.iter().any(|p| p.matches_address(address)) {
            return Err(Refusal::InternalAddress {
                host: host.to_owned(),
                address: canonical(address),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> OutboundPolicy {
        OutboundPolicy::new(entries).expect("valid patterns")
    }

    #[test]
    fn names_match_exactly_or_below_a_domain() {
        let p = policy(&["janus.example.org", "*.rooms.example.org"]);
        assert!(p.check_host("janus.example.org").is_ok());
        assert!(p.check_host("JANUS.example.org.").is_ok());
        assert!(p.check_host("a.rooms.example.org").is_ok());
        assert!(p.check_host("rooms.example.org").is_err());
        assert!(p.check_host("evilrooms.example.org").is_err());
        assert!(p.check_host("janus.example.org.evil.net").is_err());
        assert!(p.check_host("192.0.2.1").is_err());
    }

    #[test]
    fn addresses_match_networks_and_internal_ones_need_listing() {
        let p = policy(&["10.77.0.0/16", "::1", "janus.example.org"]);
        assert!(p.check_host("10.77.3.2").is_ok());
        assert!(p.check_host("[::1]").is_ok());
        assert!(p.check_host("10.78.0.1").is_err());
        assert!(
            p.check_address("janus.example.org", "10.77.1.1".parse().unwrap())
                .is_ok()
        );
        assert!(
            p.check_address("janus.example.org", "::ffff:10.77.1.1".parse().unwrap())
                .is_ok()
        );
        for internal in [
            "127.0.0.1",
            "169.254.169.254",
            "192.168.1.1",
            "172.16.0.1",
            "fe80::1",
            "fd00::1",
            "100.64.0.1",
            "0.0.0.0",
            "::ffff:127.0.0.1",
        ] {
            assert!(
                p.check_address("janus.example.org", internal.parse().unwrap())
                    .is_err(),
                "{internal} passed"
            );
        }
        assert!(
            p.check_address("janus.example.org", "192.0.2.80".parse().unwrap())
                .is_ok()
        );
        assert!(
            p.check_address("janus.example.org", "2001:db8::1".parse().unwrap())
                .is_ok()
        );
    }

    #[test]
    fn the_empty_list_refuses_everything_naming_the_key() {
        let p = OutboundPolicy::default();
        let err = p.check_host("janus.example.org").expect_err("refused");
        assert!(err.to_string().contains(KEY), "{err}");
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in ["*", "http://janus", "10.0.0.0/33", "a..b", "-a.example"] {
            let err = OutboundPolicy::new(&[bad]).expect_err(bad);
            assert!(err.contains(bad), "{err}");
        }
    }
}
