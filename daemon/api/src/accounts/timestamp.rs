//! Creation times of users and tokens: RFC 3339, UTC, whole seconds.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub(super) fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    // Formatting a current UTC time as RFC 3339 cannot fail (years 0..=9999).
    now.format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_rfc3339_utc_in_whole_seconds() {
        let text = now_rfc3339();
        assert_eq!(text.len(), "2026-11-22T10:00:00Z".len(), "{text}");
        assert!(text.ends_with('Z'), "{text}");
        assert!(OffsetDateTime::parse(&text, &Rfc3339).is_ok());
    }
}
