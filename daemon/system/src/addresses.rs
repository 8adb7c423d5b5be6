//! The kernel's global addresses, for `status.host.addresses`.

use std::net::IpAddr;

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;

/// Every global address of a link other than loopback, `10.0.2.15/24` form, sorted. Link-local
/// addresses (`fe80::/10`, `169.254.0.0/16`) are left out. Empty when the kernel cannot be
/// asked.
pub fn global_addresses() -> Vec<String> {
    let Ok(entries) = getifaddrs() else {
        return Vec::new();
    };
    let mut found: Vec<String> = entries
        .filter(|entry| !entry.flags.contains(InterfaceFlags::IFF_LOOPBACK))
        .filter_map(|entry| {
            let address = entry.address?;
            let netmask = entry.netmask;
            if let Some(v4) = address.as_sockaddr_in() {
                let prefix = netmask
                    .as_ref()
                    .and_then(|m| m.as_sockaddr_in())
                    .map(|m| m.ip().to_bits().count_ones())
                    .unwrap_or(32);
                Some((IpAddr::V4(v4.ip()), prefix))
            } else if let Some(v6) = address.as_sockaddr_in6() {
                let prefix = netmask
                    .as_ref()
                    .and_then(|m| m.as_sockaddr_in6())
                    .map(|m| m.ip().to_bits().count_ones())
                    .unwrap_or(128);
                Some((IpAddr::V6(v6.ip()), prefix))
            } else {
                None
            }
        })
        .filter(|(ip, _)| is_global(ip))
        .map(|(ip, prefix)| format!("{ip}/{prefix}"))
        .collect();
    found.sort();
    found.dedup();
    found
}

fn is_global(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_loopback() || v4.is_link_local() || v4.is_unspecified()),
        IpAddr::V6(v6) => !(v6.is_loopback() || v6.is_unicast_link_local() || v6.is_unspecified()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_global_addresses_with_a_prefix() {
        for address in global_addresses() {
            let (ip, prefix) = address.split_once('/').expect("address/prefix");
            let ip: IpAddr = ip.parse().unwrap();
            assert!(is_global(&ip), "{address}");
            assert!(prefix.parse::<u8>().is_ok(), "{address}");
        }
        assert!(!is_global(&"127.0.0.1".parse().unwrap()));
        assert!(!is_global(&"fe80::1".parse().unwrap()));
        assert!(!is_global(&"169.254.3.4".parse().unwrap()));
        assert!(is_global(&"10.0.2.15".parse().unwrap()));
        assert!(is_global(&"2001:db8::10".parse().unwrap()));
    }
}
