//! Anonymous requests that only found a 404 or 405 (scanners, typos, broken scripts) would fill
//! the audit log with a line each and push real records out through rotation. They are counted
//! per source and status instead, and written as one record each per interval: the log still
//! shows who probed, how often and what, but a scan costs a few lines, not thousands.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

use super::log::now_rfc3339;
use super::record::NewAuditRecord;

/// Sources counted separately per interval; any more share one bucket under the unspecified
/// address, so that a scan from many addresses cannot grow the counter without bound.
pub(super) const MAX_SOURCES: usize = 256;

#[derive(Debug, Default)]
pub(super) struct NoiseCounter {
    buckets: HashMap<(IpAddr, u16), Bucket>,
}

#[derive(Debug)]
struct Bucket {
    count: u64,
    since: String,
    /// The latest request of the bucket, as an example of what was tried.
    last: NewAuditRecord,
}

impl NoiseCounter {
    pub(super) fn count(&mut self, record: NewAuditRecord) {
        let mut key = (record.source, record.status);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= MAX_SOURCES {
            key.0 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        }
        match self.buckets.get_mut(&key) {
            Some(bucket) => {
                bucket.count += 1;
                bucket.last = record;
            }
            None => {
                self.buckets.insert(
                    key,
                    Bucket {
                        count: 1,
                        since: now_rfc3339(),
                        last: record,
                    },
                );
            }
        }
    }

    /// One record per source and status counted since the last drain, oldest first.
    pub(super) fn drain(&mut self) -> Vec<NewAuditRecord> {
        let mut buckets: Vec<((IpAddr, u16), Bucket)> = self.buckets.drain().collect();
        buckets.sort_by(|a, b| a.1.since.cmp(&b.1.since).then(a.0.cmp(&b.0)));
        buckets
            .into_iter()
            .map(|((source, status), bucket)| {
                let from = if source.is_unspecified() {
                    "from sources beyond the first 256"
                } else {
                    "from this source"
                };
                NewAuditRecord {
                    source,
                    detail: Some(format!(
                        "{} anonymous requests answered {status} {from} since {} (counted, not \
                         written one by one; the last one is shown)",
                        bucket.count, bucket.since
                    )),
                    ..bucket.last
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn probe(source: IpAddr, status: u16, path: &str) -> NewAuditRecord {
        NewAuditRecord {
            actor: "anonymous".into(),
            role: None,
            source,
            method: "POST".into(),
            path: path.into(),
            status,
            detail: None,
        }
    }

    #[test]
    fn one_record_per_source_and_status_with_the_count() {
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        let mut noise = NoiseCounter::default();
        for i in 0..100 {
            noise.count(probe(a, 404, &format!("/wp-admin/{i}")));
        }
        noise.count(probe(a, 405, "/api/v1/health"));
        noise.count(probe(b, 404, "/x"));
        let mut records = noise.drain();
        records.sort_by_key(|r| (r.source, r.status));
        assert_eq!(records.len(), 3);
        assert_eq!((records[0].source, records[0].status), (a, 404));
        assert_eq!(records[0].path, "/wp-admin/99");
        let detail = records[0].detail.as_deref().unwrap();
        assert!(
            detail.starts_with("100 anonymous requests answered 404"),
            "{detail}"
        );
        assert!(noise.drain().is_empty(), "drained");
    }

    #[test]
    fn sources_beyond_the_bound_share_one_bucket() {
        let mut noise = NoiseCounter::default();
        for i in 0..(MAX_SOURCES as u32 + 50) {
            noise.count(probe(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 404, "/"));
        }
        let records = noise.drain();
        assert_eq!(records.len(), MAX_SOURCES + 1);
        let shared = records.iter().find(|r| r.source.is_unspecified()).unwrap();
        assert!(shared.detail.as_deref().unwrap().starts_with("50 "));
    }
}
