//! Which source addresses count as one client, for every per-source limit (logins, pairing,
//! PIN guesses, TLS handshakes, API connections, event sockets). An IPv4 address is one
//! source; an IPv6 host usually holds a whole /64 (SLAAC, privacy addresses), so counting single
//! IPv6 addresses would give one machine 2^64 fresh identities. IPv4-mapped IPv6 addresses
//! count as IPv4.

use std::net::{IpAddr, Ipv6Addr};

/// The address that stands for `source` in every per-source count: the address itself for
/// IPv4, its /64 prefix (host bits zeroed) for IPv6.
pub fn source_group(source: IpAddr) -> IpAddr {
    match source {
        IpAddr::V4(_) => source,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_hosts_of_one_64_are_one_source_and_ipv4_stays_exact() {
        let a: IpAddr = "2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source_group(a), source_group(b));
        assert_eq!(source_group(a), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        assert_ne!(source_group(a), source_group(other));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(source_group(v4), v4);
        assert_ne!(source_group(v4), source_group("192.0.2.8".parse().unwrap()));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(source_group(mapped), v4);
    }
}
