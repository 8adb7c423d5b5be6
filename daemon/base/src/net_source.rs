//! Which source addresses count as one client, for every per-source limit (logins, pairing,
//! PIN guesses, TLS handshakes, API connections, event sockets). An IPv4 address is one
//! source; an IPv6 host usually holds a whole /64 (SLAAC, privacy addresses), so counting single
//! IPv6 addresses would give one machine 2^64 fresh identities. IPv4-mapped IPv6 addresses
//! count as IPv4.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard};

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

/// Places held open per source (connections, sockets): a place is taken under a limit and given
/// back when its [`SourcePlace`] is dropped, i.e. when what it stands for ends.
#[derive(Debug)]
pub struct OpenPerSource {
    open: Mutex<BTreeMap<IpAddr, usize>>,
}

/// Why [`OpenPerSource::take`] refused a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// All sources together hold the total given.
    Total,
    /// This source holds the most one source may.
    Source,
}

/// One place held in an [`OpenPerSource`]; given back when dropped.
#[derive(Debug)]
pub struct SourcePlace {
    table: &'static OpenPerSource,
    source: IpAddr,
}

impl OpenPerSource {
    /// An empty table; `const` so that a table can be a `static` (as [`take`](Self::take)
    /// needs).
    pub const fn new() -> OpenPerSource {
        OpenPerSource {
            open: Mutex::new(BTreeMap::new()),
        }
    }

    /// Takes a place for `address` (grouped by [`source_group`]): refused when all sources
    /// together hold `total` places (when given), or this source holds `per_source`.
    pub fn take(
        &'static self,
        address: IpAddr,
        per_source: usize,
        total: Option<usize>,
    ) -> Result<SourcePlace, Full> {
        let source = source_group(address);
        let mut open = self.lock();
        if let Some(total) = total
            && open.values().sum::<usize>() >= total
        {
            return Err(Full::Total);
        }
        let here = open.entry(source).or_insert(0);
        if *here >= per_source {
            return Err(Full::Source);
        }
        *here += 1;
        Ok(SourcePlace {
            table: self,
            source,
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<IpAddr, usize>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for OpenPerSource {
    fn default() -> Self {
        OpenPerSource::new()
    }
}

impl Drop for SourcePlace {
    fn drop(&mut self) {
        let mut open = self.table.lock();
        if let Some(here) = open.get_mut(&self.source) {
            *here = here.saturating_sub(1);
            if *here == 0 {
                open.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_per_source_and_in_total_and_given_back_when_dropped() {
        static TABLE: OpenPerSource = OpenPerSource::new();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let a_too: IpAddr = "2001:db8:1:2::2".parse().unwrap();
        let b: IpAddr = "192.0.2.7".parse().unwrap();
        let held_a = TABLE.take(a, 2, Some(3)).unwrap();
        let _held_a_too = TABLE.take(a_too, 2, Some(3)).unwrap();
        assert_eq!(TABLE.take(a, 2, Some(3)).unwrap_err(), Full::Source);
        let held_b = TABLE.take(b, 2, Some(3)).unwrap();
        assert_eq!(TABLE.take(b, 2, Some(3)).unwrap_err(), Full::Total);
        // Without a total, only the source's count bounds it.
        let held_b_too = TABLE.take(b, 2, None).unwrap();
        assert_eq!(TABLE.take(b, 2, None).unwrap_err(), Full::Source);
        drop(held_a);
        drop(held_b);
        drop(held_b_too);
        let _again = TABLE.take(a, 2, Some(3)).unwrap();
        // A source whose places are all back is forgotten.
        assert!(!TABLE.lock().contains_key(&b));
    }

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
