//! How many new TLS connections each source may open: a token bucket per source address, checked
//! when the connection is accepted, before any handshake work (and before any TPM signature).
//! Sources are grouped by [`source_group`] (IPv6 per /64, the block one host usually holds).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use roomd_base::net_source::source_group;
use roomd_base::sync::lock;

/// New connections a source may open at once (a browser opens about six to one origin).
pub(super) const BURST: f64 = 20.0;
/// New connections per second a source may open after its burst.
pub(super) const PER_SECOND: f64 = 10.0;
/// Sources remembered at once; beyond that, unknown sources share one bucket, so the table stays
/// bounded while many addresses flood.
const MAX_SOURCES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    /// The address as [`source_group`] groups it.
    Group(IpAddr),
    /// Every source the table has no room for.
    Overflow,
}

impl Source {
    fn of(ip: IpAddr) -> Source {
        Source::Group(source_group(ip))
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn refilled(self, now: Instant) -> Bucket {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        Bucket {
            tokens: (self.tokens + elapsed * PER_SECOND).min(BURST),
            updated: now,
        }
    }
}

/// The buckets of every source seen recently.
#[derive(Debug, Default)]
pub(super) struct SourceLimit {
    buckets: Mutex<HashMap<Source, Bucket>>,
}

impl SourceLimit {
    /// Takes one token from `ip`'s bucket: false when it has none left (refuse the connection).
    pub(super) fn admit(&self, ip: IpAddr) -> bool {
        self.admit_at(ip, Instant::now())
    }

    fn admit_at(&self, ip: IpAddr, now: Instant) -> bool {
        let mut buckets = lock(&self.buckets);
        let mut source = Source::of(ip);
        if !buckets.contains_key(&source) && buckets.len() >= MAX_SOURCES {
            // A full bucket is the same as no bucket: forget those to make room.
            buckets.retain(|_, bucket| bucket.refilled(now).tokens < BURST);
            if buckets.len() >= MAX_SOURCES {
                source = Source::Overflow;
            }
        }
        let bucket = buckets.entry(source).or_insert(Bucket {
            tokens: BURST,
            updated: now,
        });
        *bucket = bucket.refilled(now);
        if bucket.tokens < 1.0 {
            return false;
        }
        bucket.tokens -= 1.0;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_source_gets_its_burst_then_its_rate() {
        let limit = SourceLimit::default();
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let start = Instant::now();
        let admitted = (0..100).filter(|_| limit.admit_at(ip, start)).count();
        assert_eq!(admitted, BURST as usize);
        let later = start + Duration::from_secs(1);
        let admitted = (0..100).filter(|_| limit.admit_at(ip, later)).count();
        assert_eq!(admitted, PER_SECOND as usize);
        // Another source is not affected.
        assert!(limit.admit_at(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), later));
    }

    #[test]
    fn ipv6_sources_count_per_64_and_mapped_ipv4_as_ipv4() {
        let limit = SourceLimit::default();
        let now = Instant::now();
        for host in 0..BURST as u16 {
            assert!(limit.admit_at(
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, host)),
                now
            ));
        }
        assert!(!limit.admit_at(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 9, 9, 9, 9)),
            now
        ));
        assert!(limit.admit_at(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1)),
            now
        ));
        let v4 = Ipv4Addr::new(198, 51, 100, 7);
        for _ in 0..BURST as usize {
            assert!(limit.admit_at(IpAddr::V4(v4), now));
        }
        assert!(!limit.admit_at(IpAddr::V6(v4.to_ipv6_mapped()), now));
    }

    #[test]
    fn the_table_stays_bounded_under_many_sources() {
        let limit = SourceLimit::default();
        let now = Instant::now();
        for n in 0..(MAX_SOURCES as u32 + 1000) {
            limit.admit_at(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)), now);
        }
        let buckets = limit.buckets.lock().map(|b| b.len()).unwrap_or(0);
        assert!(buckets <= MAX_SOURCES + 1, "{buckets} buckets");
    }
}
