//! Requests to mute (docs/meetings.md, "Roles"): the room or a moderator asks a guest to
//! switch their microphone off, and the guest's page shows the request with a button that does
//! it. The room never mutes nor unmutes a guest itself: what a guest sends stays theirs to
//! decide.

use serde::Serialize;

use super::engine::GuestDirection;
use super::roster::Roster;
use roomd_core::MuteRequest;

/// A request as the guest's page gets it.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "mute_request")]
struct MuteRequestLine<'a> {
    from: &'a str,
}

#[derive(Default)]
pub(crate) struct MuteRequests {
    /// The last request passed on (`MuteRequest::seq`).
    sent: u64,
}

impl MuteRequests {
    /// Passes each request of the plan not passed on yet to its guest's page. A page whose
    /// channel is not open misses it: the request was about that moment.
    pub(crate) fn pass_on(&mut self, roster: &Roster, requests: &[MuteRequest]) {
        let sent = self.sent;
        for request in requests.iter().filter(|r| r.seq > sent) {
            self.sent = request.seq;
            let Ok(line) = serde_json::to_string(&MuteRequestLine {
                from: &request.from,
            }) else {
                continue;
            };
            roster.send_data_to(&request.participant, GuestDirection::Whep.as_str(), &line);
        }
    }
}
