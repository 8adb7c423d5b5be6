//! The nightly reboot: its next occurrence in the box's time zone, and pushing it back while
//! a meeting is on. Pure functions; the worker asks logind.

use std::time::Duration;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use crate::error::HostError;

/// A meeting going on this long before the reboot pushes it back.
pub const POSTPONE_WINDOW: Duration = Duration::from_secs(5 * 60);
/// How far a meeting pushes the reboot back each time.
pub const POSTPONE_BY: Duration = Duration::from_secs(30 * 60);

/// The first time strictly after `now` at which the wall clock in `tz` shows `hour:minute`.
/// A time that does not exist that day (the DST gap, e.g. 02:30 in Europe/Berlin on the last
/// Sunday of March) is taken as the same length after the gap (03:30 CEST, an hour later in
/// UTC than the night before); a time that exists twice (the last Sunday of October) is taken
/// the first time, so the box reboots once.
pub fn next_occurrence(
    now: Timestamp,
    tz: &TimeZone,
    hour: u8,
    minute: u8,
) -> Result<Timestamp, HostError> {
    let bad = |e: jiff::Error| HostError::Time(e.to_string());
    let hour = i8::try_from(hour).map_err(|_| HostError::Time(format!("hour {hour}")))?;
    let minute = i8::try_from(minute).map_err(|_| HostError::Time(format!("minute {minute}")))?;
    let today: Date = now.to_zoned(tz.clone()).date();
    for days in 0..3 {
        let day = today.checked_add(days.days()).map_err(bad)?;
        let at = day
            .at(hour, minute, 0, 0)
            .to_zoned(tz.clone())
            .map_err(bad)?
            .timestamp();
        if at > now {
            return Ok(at);
        }
    }
    Err(HostError::Time(format!(
        "no {hour:02}:{minute:02} within two days of {now}"
    )))
}

/// The reboot planned for `planned`, `now`, with a meeting on or not: when a meeting is on
/// within [`POSTPONE_WINDOW`] before the reboot, the reboot moves [`POSTPONE_BY`] later (and
/// again, as long as the meeting lasts). `None`: leave it.
pub fn postponed(planned: Timestamp, now: Timestamp, meeting_on: bool) -> Option<Timestamp> {
    let window = jiff::SignedDuration::try_from(POSTPONE_WINDOW).ok()?;
    let by = jiff::SignedDuration::try_from(POSTPONE_BY).ok()?;
    let due_soon = now < planned && planned.duration_since(now) <= window;
    (meeting_on && due_soon).then(|| planned.checked_add(by).ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").expect("the tz database has Europe/Berlin")
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn later_today_or_tomorrow() {
        let tz = berlin();
        // 2026-12-06 is winter: CET, UTC+1.
        assert_eq!(
            next_occurrence(at("2026-12-06T01:00:00Z"), &tz, 3, 30).unwrap(),
            at("2026-12-06T02:30:00Z")
        );
        assert_eq!(
            next_occurrence(at("2026-12-06T14:00:00Z"), &tz, 3, 30).unwrap(),
            at("2026-12-07T02:30:00Z")
        );
        // Exactly at the time: the next day's, not now.
        assert_eq!(
            next_occurrence(at("2026-12-06T02:30:00Z"), &tz, 3, 30).unwrap(),
            at("2026-12-07T02:30:00Z")
        );
        assert_eq!(
            next_occurrence(at("2026-12-06T14:00:00Z"), &TimeZone::UTC, 3, 30).unwrap(),
            at("2026-12-07T03:30:00Z")
        );
    }

    #[test]
    fn across_the_spring_change() {
        let tz = berlin();
        // 2027-03-28 is the last Sunday of March: 02:00 CET becomes 03:00 CEST.
        // 03:30 exists: CEST, UTC+2 (the night before it was UTC+1).
        assert_eq!(
            next_occurrence(at("2027-03-27T12:00:00Z"), &tz, 3, 30).unwrap(),
            at("2027-03-28T01:30:00Z")
        );
        assert_eq!(
            next_occurrence(at("2027-03-26T12:00:00Z"), &tz, 3, 30).unwrap(),
            at("2027-03-27T02:30:00Z")
        );
        // 02:30 does not exist that night: it is taken as 03:30 CEST.
        assert_eq!(
            next_occurrence(at("2027-03-27T12:00:00Z"), &tz, 2, 30).unwrap(),
            at("2027-03-28T01:30:00Z")
        );
    }

    #[test]
    fn across_the_autumn_change() {
        let tz = berlin();
        // 2026-10-25 is the last Sunday of October: 03:00 CEST becomes 02:00 CET; 02:30
        // happens twice, and the box reboots at the first (CEST, UTC+2).
        assert_eq!(
            next_occurrence(at("2026-10-24T12:00:00Z"), &tz, 2, 30).unwrap(),
            at("2026-10-25T00:30:00Z")
        );
        // After the first 02:30, the next is the next night's (not the second 02:30).
        assert_eq!(
            next_occurrence(at("2026-10-25T00:30:00Z"), &tz, 2, 30).unwrap(),
            at("2026-10-26T01:30:00Z")
        );
        // 03:30 is CET from then on.
        assert_eq!(
            next_occurrence(at("2026-10-24T12:00:00Z"), &tz, 3, 30).unwrap(),
            at("2026-10-25T02:30:00Z")
        );
    }

    #[test]
    fn a_meeting_pushes_the_reboot_back() {
        let planned = at("2026-12-07T02:30:00Z");
        // More than 5 minutes before: not yet.
        assert_eq!(postponed(planned, at("2026-12-07T02:24:59Z"), true), None);
        // Within 5 minutes and a meeting on: 30 minutes later.
        assert_eq!(
            postponed(planned, at("2026-12-07T02:25:00Z"), true),
            Some(at("2026-12-07T03:00:00Z"))
        );
        assert_eq!(
            postponed(planned, at("2026-12-07T02:29:59Z"), true),
            Some(at("2026-12-07T03:00:00Z"))
        );
        // No meeting: the reboot stays.
        assert_eq!(postponed(planned, at("2026-12-07T02:27:00Z"), false), None);
        // Already due: logind has it.
        assert_eq!(postponed(planned, at("2026-12-07T02:30:00Z"), true), None);
        // Pushed back again while the meeting lasts.
        let later = at("2026-12-07T03:00:00Z");
        assert_eq!(
            postponed(later, at("2026-12-07T02:56:00Z"), true),
            Some(at("2026-12-07T03:30:00Z"))
        );
    }
}
