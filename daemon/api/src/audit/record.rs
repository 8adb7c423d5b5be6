//! One entry of the audit log, as written to the file and returned by `GET /api/v1/audit`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::accounts::Role;

/// What the caller supplies; the log adds `seq` and `time`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditRecord {
    /// A username, `token:<id>`, or `anonymous`.
    pub actor: String,
    /// The caller's role; `None` for anonymous callers.
    pub role: Option<Role>,
    /// The caller's IP address.
    pub source: IpAddr,
    /// HTTP method of the request.
    pub method: String,
    /// Request path, without the query.
    pub path: String,
    /// HTTP status of the response.
    pub status: u16,
    /// Short description (which user was created, which keys changed). Never secrets.
    pub detail: Option<String>,
}

/// A record as stored and served: a [`NewAuditRecord`] with its number and time, each text
/// field cut to a bound (128 characters for `actor`, 16 `method`, 1024 `path`, 512 `detail`,
/// marked with `…`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// 1, 2, 3 … in order of writing, continued across restarts.
    pub seq: u64,
    /// RFC 3339, UTC, whole seconds.
    pub time: String,
    /// Who, as in [`NewAuditRecord::actor`].
    pub actor: String,
    /// The caller's role; `None` for anonymous callers.
    #[serde(default)]
    pub role: Option<Role>,
    /// The caller's IP address; `::` if unknown, or for counted noise from sources beyond
    /// the first 256.
    pub source: IpAddr,
    /// HTTP method of the request.
    pub method: String,
    /// Request path, without the query.
    pub path: String,
    /// HTTP status of the response.
    pub status: u16,
    /// As in [`NewAuditRecord::detail`]; for counted 404/405 noise, how many and since when.
    #[serde(default)]
    pub detail: Option<String>,
}

// Bounds per field, so that one request cannot write a huge line (the API bounds its inputs too,
// but the log should not depend on that).
const MAX_ACTOR_CHARS: usize = 128;
const MAX_METHOD_CHARS: usize = 16;
const MAX_PATH_CHARS: usize = 1024;
const MAX_DETAIL_CHARS: usize = 512;

impl AuditRecord {
    /// `new` numbered `seq` at `time` (RFC 3339), its fields cut to their bounds.
    pub fn new(seq: u64, time: String, new: NewAuditRecord) -> Self {
        AuditRecord {
            seq,
            time,
            actor: cut(new.actor, MAX_ACTOR_CHARS),
            role: new.role,
            source: new.source,
            method: cut(new.method, MAX_METHOD_CHARS),
            path: cut(new.path, MAX_PATH_CHARS),
            status: new.status,
            detail: new.detail.map(|detail| cut(detail, MAX_DETAIL_CHARS)),
        }
    }
}

fn cut(mut text: String, max_chars: usize) -> String {
    if let Some((byte_index, _)) = text.char_indices().nth(max_chars) {
        text.truncate(byte_index);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn overlong_fields_are_cut_on_character_boundaries() {
        let record = AuditRecord::new(
            1,
            "2026-01-01T00:00:00Z".into(),
            NewAuditRecord {
                actor: "é".repeat(500),
                role: None,
                source: IpAddr::V4(Ipv4Addr::LOCALHOST),
                method: "GET".into(),
                path: "/api/v1/status".into(),
                status: 200,
                detail: Some("x".repeat(10_000)),
            },
        );
        assert_eq!(record.actor.chars().count(), MAX_ACTOR_CHARS + 1);
        assert!(record.actor.ends_with('…'));
        assert_eq!(
            record.detail.as_deref().map(|d| d.chars().count()),
            Some(MAX_DETAIL_CHARS + 1)
        );
        assert_eq!(record.path, "/api/v1/status");
    }
}
