//! Meetings as the core handles them: join and leave, the lobby of a hosted meeting, reports
//! from the engine, and the call history.

use serde_json::json;

use super::*;
use crate::call_history::CallHistory;
use roomd_model::Secret;
use roomd_model::config::Config;

fn setup(dir: &tempfile::TempDir) -> CoreSetup {
    let mut config = Config::default();
    config.system.state_dir = dir.path().to_owned();
    config.api.certificate_names = vec!["room-a.example.org".into()];
    CoreSetup {
        config,
        config_path: dir.path().join("roomd.toml"),
        claimed: true,
        identity: IdentityStatus {
            backend: "software",
            key_sha256: "ab12".into(),
            certificate_sha256: "AB:CD".into(),
            warning: None,
        },
    }
}

/// Where test guests come from: an honest one, and a PIN guesser.
const GUEST: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 10));
const GUESSER: std::net::IpAddr =
    std::net::IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 7));

/// Hosts a meeting (`target` a hosted one) and returns its id.
async fn host(room: &RoomHandle, target: serde_json::Value) -> String {
    room.execute(join(target)).await.unwrap();
    room.status().tree["meeting"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn join(target: serde_json::Value) -> RoomCommand {
    RoomCommand::parse("meeting.join", &json!({ "target": target })).unwrap()
}

#[tokio::test]
async fn a_hosted_meeting_admits_guests_from_the_lobby_with_the_right_pin() {
    let dir = tempfile::tempdir().unwrap();
    let (room, _task) = spawn(setup(&dir));
    let plans = room.watch_meeting_plan();
    room.execute(join(json!({"kind": "hosted", "pin": "4711"})))
        .await
        .unwrap();
    let meeting = room.status().tree["meeting"].clone();
    assert_eq!(meeting["state"], "connected");
    let id = meeting["id"].as_str().unwrap().to_owned();
    assert!(id.len() >= 8, "{id}");
    assert_eq!(
        meeting["join_url"],
        format!("https://room-a.example.org:8443/join/{id}")
    );
    assert!(
        !meeting.to_string().contains("4711"),
        "the PIN leaked: {meeting}"
    );
    let plan = plans.borrow().clone().unwrap();
    assert_eq!(plan.meeting_id, id);

    // Wrong PIN, unknown meeting.
    let wrong = room
        .guest_arrive(
            id.clone(),
            "Mallory".into(),
            Some(Secret::new("0000".into())),
            GUESSER,
        )
        .await
        .unwrap_err();
    assert!(matches!(wrong, CoreError::Forbidden(_)), "{wrong}");
    let unknown = room
        .guest_arrive("NOSUCHMEETING".into(), "Alice".into(), None, GUEST)
        .await
        .unwrap_err();
    assert!(matches!(unknown, CoreError::NotFound(_)), "{unknown}");

    let ticket = room
        .guest_arrive(
            id.clone(),
            "Alice".into(),
            Some(Secret::new("4711".into())),
            GUEST,
        )
        .await
        .unwrap();
    let state = room
        .guest_state(id.clone(), ticket.guest_id.clone(), ticket.token.clone())
        .await
        .unwrap();
    assert_eq!(state, GuestState::Lobby);
    let not_yet = room
        .guest_admitted(id.clone(), ticket.guest_id.clone(), ticket.token.clone())
        .await
        .unwrap_err();
    assert!(not_yet.to_string().contains("lobby"), "{not_yet}");
    let forged = room
        .guest_state(
            id.clone(),
            ticket.guest_id.clone(),
            Secret::new("forged".into()),
        )
        .await
        .unwrap_err();
    assert!(matches!(forged, CoreError::Forbidden(_)), "{forged}");
    assert_eq!(
        room.status().tree["meeting"]["participants"][0]["state"],
        "lobby"
    );

    room.execute(RoomCommand::AdmitParticipant {
        id: ticket.guest_id.clone(),
    })
    .await
    .unwrap();
    let admitted = room
        .guest_admitted(id.clone(), ticket.guest_id.clone(), ticket.token.clone())
        .await
        .unwrap();
    assert_eq!(admitted.name, "Alice");

    room.execute(RoomCommand::RemoveParticipant {
        id: ticket.guest_id.clone(),
    })
    .await
    .unwrap();
    assert_eq!(
        room.guest_state(id.clone(), ticket.guest_id.clone(), ticket.token.clone())
            .await
            .unwrap(),
        GuestState::Removed
    );
    assert!(
        plans
            .borrow()
            .clone()
            .unwrap()
            .removed
            .contains(&ticket.guest_id)
    );

    room.execute(RoomCommand::LeaveMeeting).await.unwrap();
    assert_eq!(room.status().tree["meeting"]["state"], "idle");
    assert!(plans.borrow().is_none());
    // The meeting has ended: its id no longer answers.
    let gone = room
        .guest_state(id, ticket.guest_id, ticket.token)
        .await
        .unwrap_err();
    assert!(matches!(gone, CoreError::NotFound(_)), "{gone}");
    let calls = CallHistory::in_state_dir(dir.path()).list(30).unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].kind, "hosted");
    assert_eq!(calls[0].outcome, "ended");
}

#[tokio::test]
async fn wrong_pins_slow_down_guessing() {
    let dir = tempfile::tempdir().unwrap();
    let (room, _task) = spawn(setup(&dir));
    let id = host(&room, json!({"kind": "hosted", "pin": "4711"})).await;
    let mut last = None;
    for _ in 0..6 {
        last = Some(
            room.guest_arrive(
                id.clone(),
                "M".into(),
                Some(Secret::new("1234".into())),
                GUESSER,
            )
            .await
            .unwrap_err(),
        );
    }
    assert!(
        matches!(last, Some(CoreError::TooManyAttempts { .. })),
        "{last:?}"
    );
    // The guesser's whole /64 waits; a guest from elsewhere with the right PIN does not.
    let neighbour: std::net::IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
    let held = room
        .guest_arrive(
            id.clone(),
            "M".into(),
            Some(Secret::new("4711".into())),
            neighbour,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(held, CoreError::TooManyAttempts { .. }),
        "{held:?}"
    );
    room.guest_arrive(
        id.clone(),
        "Alice".into(),
        Some(Secret::new("4711".into())),
        GUEST,
    )
    .await
    .expect("a guest from another source gets in");
}

#[tokio::test]
async fn the_lobby_has_places_and_leaving_twice_is_leaving_once() {
    let dir = tempfile::tempdir().unwrap();
    let (room, _task) = spawn(setup(&dir));
    let plans = room.watch_meeting_plan();
    let id = host(&room, json!({"kind": "hosted"})).await;
    let mut tickets = Vec::new();
    for n in 0..super::meeting_desk::MAX_LOBBY {
        tickets.push(
            room.guest_arrive(id.clone(), format!("G{n}"), None, GUEST)
                .await
                .expect("a lobby place"),
        );
    }
    let full = room
        .guest_arrive(id.clone(), "One too many".into(), None, GUEST)
        .await
        .unwrap_err();
    assert!(full.to_string().contains("lobby is full"), "{full}");

    let first = &tickets[0];
    for _ in 0..3 {
        let state = room
            .guest_leave(id.clone(), first.guest_id.clone(), first.token.clone())
            .await
            .expect("leaving");
        assert_eq!(state, GuestState::Ended);
    }
    let plan = plans.borrow().clone().unwrap();
    assert_eq!(
        plan.removed
            .iter()
            .filter(|r| **r == first.guest_id)
            .count(),
        1,
        "{:?}",
        plan.removed
    );
    // The place it left is free again.
    room.guest_arrive(id.clone(), "Next".into(), None, GUEST)
        .await
        .expect("the freed place");
}

#[tokio::test]
async fn a_second_join_is_refused_and_reports_of_an_old_meeting_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (room, _task) = spawn(setup(&dir));
    let plans = room.watch_meeting_plan();
    room.execute(join(
        json!({"kind": "janus", "server": "https://janus.example/janus", "room": 7, "pin": "p1n"}),
    ))
    .await
    .unwrap();
    assert_eq!(room.status().tree["meeting"]["state"], "joining");
    let err = room
        .execute(join(json!({"kind": "hosted"})))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already in a meeting"), "{err}");
    let generation = plans.borrow().clone().unwrap().generation;

    let participant = Participant {
        id: "p-1".into(),
        name: "Bob".into(),
        state: ParticipantState::Connected,
        audio: MediaState::On,
        video: MediaState::On,
        talking: true,
        hand_raised: false,
        encryption: "dtls-srtp".into(),
    };
    room.meeting_report(MeetingReport::State {
        generation,
        state: MeetingState::Connected,
        error: String::new(),
    })
    .await
    .unwrap();
    room.meeting_report(MeetingReport::Participant {
        generation,
        participant: participant.clone(),
    })
    .await
    .unwrap();
    // From an earlier meeting: ignored.
    room.meeting_report(MeetingReport::ParticipantLeft {
        generation: generation - 1,
        id: "p-1".into(),
    })
    .await
    .unwrap();
    let meeting = room.status().tree["meeting"].clone();
    assert_eq!(meeting["state"], "connected");
    assert_eq!(meeting["participants"][0]["name"], "Bob");
    assert_eq!(meeting["participants"][0]["encryption"], "dtls-srtp");

    room.meeting_report(MeetingReport::State {
        generation,
        state: MeetingState::Failed,
        error: "the server sent malformed signalling: expected JSON".into(),
    })
    .await
    .unwrap();
    let meeting = room.status().tree["meeting"].clone();
    assert_eq!(meeting["state"], "failed");
    assert!(meeting["error"].as_str().unwrap().contains("malformed"));
    assert!(plans.borrow().is_none(), "the engine is told to stop");
    let calls = CallHistory::in_state_dir(dir.path()).list(30).unwrap();
    assert_eq!(calls[0].outcome, "failed");
    assert_eq!(calls[0].participants, ["Bob"]);
    assert!(!serde_json::to_string(&calls).unwrap().contains("p1n"));

    // A new meeting may start after a failure; leaving clears the failure.
    room.execute(RoomCommand::LeaveMeeting).await.unwrap();
    assert_eq!(room.status().tree["meeting"]["state"], "idle");
    assert_eq!(room.status().tree["meeting"]["error"], "");
}

#[tokio::test]
async fn dtmf_goes_only_to_a_connected_sip_call_and_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (room, _task) = spawn(setup(&dir));
    let plans = room.watch_meeting_plan();
    let dtmf = |digits: &str| RoomCommand::SendDtmf {
        digits: digits.into(),
    };
    let err = room.execute(dtmf("1")).await.unwrap_err();
    assert!(matches!(err, CoreError::Refused(_)), "{err}");

    // A hosted meeting carries no tones.
    room.execute(join(json!({"kind": "hosted"}))).await.unwrap();
    let err = room.execute(dtmf("1")).await.unwrap_err();
    assert!(err.to_string().contains("SIP calls only"), "{err}");
    room.execute(RoomCommand::LeaveMeeting).await.unwrap();

    // A SIP call takes them once connected, in order, into the plan the engine follows.
    room.execute(join(
        json!({"kind": "sip", "uri": "sips:bridge@pbx.example"}),
    ))
    .await
    .unwrap();
    let err = room.execute(dtmf("1")).await.unwrap_err();
    assert!(err.to_string().contains("not connected"), "{err}");
    let generation = plans.borrow().clone().unwrap().generation;
    room.meeting_report(MeetingReport::State {
        generation,
        state: MeetingState::Connected,
        error: String::new(),
    })
    .await
    .unwrap();
    room.execute(dtmf("1234#")).await.unwrap();
    room.execute(dtmf("*9")).await.unwrap();
    assert_eq!(plans.borrow().clone().unwrap().dtmf, ["1234#", "*9"]);

    // The plan holds a bounded number of commands per call.
    for _ in 2..crate::meeting_desk::DTMF_MAX_COMMANDS {
        room.execute(dtmf("0")).await.unwrap();
    }
    let err = room.execute(dtmf("0")).await.unwrap_err();
    assert!(err.to_string().contains("at most"), "{err}");
}

fn caller(id: &str) -> roomd_model::sip::IncomingCall {
    roomd_model::sip::IncomingCall {
        id: id.to_owned(),
        display_name: "Alice Example".to_owned(),
        uri: "sip:alice@192.0.2.7".to_owned(),
        since: String::new(),
    }
}

#[tokio::test]
async fn a_sip_call_in_rings_until_answered_or_declined_and_is_busy_in_a_meeting() {
    let dir = tempfile::tempdir().unwrap();
    let (room, _task) = spawn(setup(&dir));
    room.sip_report(roomd_model::sip::SipStatus::starting(
        "sips:sip.example.org",
    ))
    .await
    .unwrap();
    // Nothing rings: answer and decline are refused.
    for command in [RoomCommand::AnswerCall, RoomCommand::DeclineCall] {
        let err = room.execute(command).await.unwrap_err();
        assert!(err.to_string().contains("no SIP call is ringing"), "{err}");
    }

    // It rings: status.sip.incoming; a second call meanwhile is busy.
    let (decline, declined) = tokio::sync::oneshot::channel();
    let verdict = room.sip_incoming(caller("in-1"), decline).await.unwrap();
    assert_eq!(verdict, IncomingVerdict::Ringing);
    let incoming = room.status().tree["sip"]["incoming"].clone();
    assert_eq!(incoming["uri"], "sip:alice@192.0.2.7");
    assert_eq!(incoming["display_name"], "Alice Example");
    assert!(incoming["since"].as_str().is_some_and(|s| !s.is_empty()));
    let (other, _) = tokio::sync::oneshot::channel();
    let verdict = room.sip_incoming(caller("in-2"), other).await.unwrap();
    assert_eq!(verdict, IncomingVerdict::Busy);
    // The worker's registration reports leave the ringing call alone.
    room.sip_report(roomd_model::sip::SipStatus::starting(
        "sips:sip.example.org",
    ))
    .await
    .unwrap();
    assert_eq!(room.status().tree["sip"]["incoming"]["id"], "in-1");

    // Declined: the worker hears of it, the status clears.
    room.execute(RoomCommand::DeclineCall).await.unwrap();
    declined.await.expect("the worker is told to decline");
    assert!(room.status().tree["sip"]["incoming"].is_null());

    // Answered: the call becomes the meeting (a SIP target, incoming).
    let (decline, _keep) = tokio::sync::oneshot::channel();
    room.sip_incoming(caller("in-3"), decline).await.unwrap();
    room.execute(RoomCommand::AnswerCall).await.unwrap();
    let status = room.status().tree.clone();
    assert!(status["sip"]["incoming"].is_null());
    assert_eq!(status["meeting"]["state"], "joining");
    assert_eq!(
        status["meeting"]["target"],
        json!({"kind": "sip", "uri": "sip:alice@192.0.2.7", "direction": "incoming",
               "display_name": "Alice Example"})
    );
    let plan = room.watch_meeting_plan().borrow().clone().unwrap();
    assert!(matches!(&plan.target, MeetingTarget::SipIncoming { id, .. } if id == "in-3"));

    // In a meeting, a call in is busy at once.
    let (decline, _) = tokio::sync::oneshot::channel();
    let verdict = room.sip_incoming(caller("in-4"), decline).await.unwrap();
    assert_eq!(verdict, IncomingVerdict::Busy);
}

#[tokio::test]
async fn listed_callers_are_answered_at_once_and_others_ring() {
    let dir = tempfile::tempdir().unwrap();
    let mut setup = setup(&dir);
    setup.config.sip.auto_answer = vec!["sips:Alice@192.0.2.7".to_owned()];
    let (room, _task) = spawn(setup);
    let mut stranger = caller("in-1");
    stranger.uri = "sip:mallory@192.0.2.7".to_owned();
    let (decline, _keep) = tokio::sync::oneshot::channel();
    let verdict = room.sip_incoming(stranger, decline).await.unwrap();
    assert_eq!(verdict, IncomingVerdict::Ringing);
    room.execute(RoomCommand::DeclineCall).await.unwrap();
    // The user part is compared exactly: "Alice" is not "alice".
    let (decline, _keep) = tokio::sync::oneshot::channel();
    let verdict = room.sip_incoming(caller("in-2"), decline).await.unwrap();
    assert_eq!(verdict, IncomingVerdict::Ringing);
    room.execute(RoomCommand::DeclineCall).await.unwrap();
    let mut listed = caller("in-3");
    listed.uri = "sip:Alice@192.0.2.7".to_owned();
    let (decline, _keep) = tokio::sync::oneshot::channel();
    let verdict = room.sip_incoming(listed, decline).await.unwrap();
    assert_eq!(verdict, IncomingVerdict::Answered);
    assert_eq!(room.status().tree["meeting"]["state"], "joining");
}

#[tokio::test]
async fn only_a_connected_sip_call_is_held_and_the_plan_and_status_follow() {
    let dir = tempfile::tempdir().unwrap();
    let (room, _task) = spawn(setup(&dir));
    let hold = |hold| RoomCommand::HoldCall { hold };
    // No meeting; a hosted one: refused.
    assert!(room.execute(hold(true)).await.is_err());
    room.execute(join(json!({"kind": "hosted"}))).await.unwrap();
    let err = room.execute(hold(true)).await.unwrap_err();
    assert!(err.to_string().contains("only SIP calls"), "{err}");
    room.execute(RoomCommand::LeaveMeeting).await.unwrap();

    // A SIP call: refused until connected, then held and resumed.
    room.execute(join(
        json!({"kind": "sip", "uri": "sips:alice@pbx.example.org"}),
    ))
    .await
    .unwrap();
    assert!(room.execute(hold(true)).await.is_err());
    let plans = room.watch_meeting_plan();
    let generation = plans.borrow().clone().unwrap().generation;
    room.meeting_report(MeetingReport::State {
        generation,
        state: MeetingState::Connected,
        error: String::new(),
    })
    .await
    .unwrap();
    room.execute(hold(true)).await.unwrap();
    assert!(plans.borrow().clone().unwrap().hold);
    assert_eq!(room.status().tree["meeting"]["on_hold"], true);
    room.execute(hold(false)).await.unwrap();
    assert!(!plans.borrow().clone().unwrap().hold);
    assert_eq!(room.status().tree["meeting"]["on_hold"], false);

    // A hold the far end refuses: status and the plan go back to what the call is, so that
    // holding again is a new attempt.
    room.execute(hold(true)).await.unwrap();
    room.meeting_report(MeetingReport::HoldFailed {
        generation,
        on_hold: false,
        reason: "cannot hold the call: the far end answered the re-INVITE with 408".into(),
    })
    .await
    .unwrap();
    assert!(!plans.borrow().clone().unwrap().hold);
    assert_eq!(room.status().tree["meeting"]["on_hold"], false);
    room.execute(hold(true)).await.unwrap();
    assert!(plans.borrow().clone().unwrap().hold);

    // The far end's hold is its own field: the room's stays as it is.
    for far_end in [true, false] {
        room.meeting_report(MeetingReport::FarEndHold {
            generation,
            on_hold: far_end,
        })
        .await
        .unwrap();
        let meeting = room.status().tree["meeting"].clone();
        assert_eq!(meeting["far_end_on_hold"], far_end);
        assert_eq!(meeting["on_hold"], true);
    }
}

#[tokio::test]
async fn a_short_authentication_string_is_confirmed_once_for_a_participant_who_has_one() {
    let dir = tempfile::tempdir().unwrap();
    let (room, _task) = spawn(setup(&dir));
    let confirm = |id: &str| RoomCommand::ConfirmSas {
        id: id.into(),
        by: "token panel (token:1234)".into(),
    };
    // No meeting; a meeting without end-to-end encryption: refused.
    assert!(room.execute(confirm("j-1")).await.is_err());
    room.execute(join(json!({"kind": "hosted"}))).await.unwrap();
    let err = room.execute(confirm("j-1")).await.unwrap_err();
    assert!(
        err.to_string().contains("status.meeting.e2ee.participants"),
        "{err}"
    );

    // The engine reports two participants: one whose identity is known (a string to
    // compare), one who has not announced itself.
    let plans = room.watch_meeting_plan();
    let generation = plans.borrow().clone().unwrap().generation;
    let participant = |id: &str, sas: &str| E2eeParticipant {
        id: id.into(),
        e2ee: !sas.is_empty(),
        verified: false,
        verified_by: String::new(),
        certificate_name: String::new(),
        reason: "the certificate does not chain to a trusted CA".into(),
        sas: sas.into(),
        sas_confirmed_by: String::new(),
        frames: Default::default(),
    };
    room.meeting_report(MeetingReport::E2ee {
        generation,
        e2ee: E2eeStatus {
            state: E2eeState::Establishing,
            reason: String::new(),
            key_epoch: 0,
            participants: vec![participant("j-1", "123 456"), participant("j-2", "")],
        },
    })
    .await
    .unwrap();
    let err = room.execute(confirm("j-2")).await.unwrap_err();
    assert!(
        err.to_string().contains("no short authentication string"),
        "{err}"
    );
    assert!(plans.borrow().clone().unwrap().sas_confirmed.is_empty());

    room.execute(confirm("j-1")).await.unwrap();
    let confirmed = plans.borrow().clone().unwrap().sas_confirmed.clone();
    assert_eq!(
        confirmed,
        vec![SasConfirmation {
            participant: "j-1".into(),
            by: "token panel (token:1234)".into()
        }]
    );
    let shown = room.status().tree["meeting"]["e2ee"]["participants"][0].clone();
    assert_eq!(shown["sas_confirmed_by"], "token panel (token:1234)");
    // Not verified here: only once they confirmed too (the engine reports that).
    assert_eq!(shown["verified"], false);
    // Once is enough: a second confirmation changes nothing.
    room.execute(confirm("j-1")).await.unwrap();
    assert_eq!(plans.borrow().clone().unwrap().sas_confirmed.len(), 1);
}

#[tokio::test]
async fn the_chat_is_a_hosted_meetings_bounded_and_gone_when_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (room, _task) = spawn(setup(&dir));
    let plans = room.watch_meeting_plan();
    let write = |text: &str| RoomCommand::SendChat { text: text.into() };
    let err = room.execute(write("hello")).await.unwrap_err();
    assert!(matches!(err, CoreError::Refused(_)), "{err}");
    for bad in ["", "   ", "bell \u{7}", &"x".repeat(501)] {
        let err = RoomCommand::parse("meeting.chat.send", &json!({ "text": bad })).unwrap_err();
        assert!(err.to_string().contains("500 characters"), "{bad:?}: {err}");
    }

    room.execute(join(json!({"kind": "hosted"}))).await.unwrap();
    let generation = plans.borrow().clone().unwrap().generation;
    room.execute(write("Welcome")).await.unwrap();
    room.meeting_report(MeetingReport::Chat {
        generation,
        from: "Alice".into(),
        text: "Thanks".into(),
    })
    .await
    .unwrap();
    // A guest's message the engine should have refused is refused again.
    room.meeting_report(MeetingReport::Chat {
        generation,
        from: "Alice".into(),
        text: "\u{1b}[2J".into(),
    })
    .await
    .unwrap();
    let chat = room.status().tree["meeting"]["chat"].clone();
    assert_eq!(chat.as_array().map(Vec::len), Some(2), "{chat}");
    assert_eq!(chat[0]["from_room"], true);
    assert_eq!(chat[1]["from"], "Alice");
    assert_eq!(chat[1]["seq"], 2);
    // The engine gets only the room's own, to send on.
    let plan = plans.borrow().clone().unwrap();
    assert_eq!(plan.chat.len(), 1);
    assert_eq!(plan.chat[0].text, "Welcome");

    for n in 0..60 {
        room.execute(write(&format!("line {n}"))).await.unwrap();
    }
    let chat = room.status().tree["meeting"]["chat"].clone();
    assert_eq!(chat.as_array().map(Vec::len), Some(50), "kept: the last 50");
    assert_eq!(chat[49]["text"], "line 59");
    assert_eq!(plans.borrow().clone().unwrap().chat.len(), 50);

    room.execute(RoomCommand::LeaveMeeting).await.unwrap();
    let chat = room.status().tree["meeting"]["chat"].clone();
    assert_eq!(
        chat.as_array().map(Vec::len),
        Some(0),
        "gone with the meeting: {chat}"
    );
}

#[tokio::test]
async fn the_host_makes_moderators_who_admit_remove_lock_and_hand_over_the_presenter_role() {
    let dir = tempfile::tempdir().unwrap();
    let (room, _task) = spawn(setup(&dir));
    let plans = room.watch_meeting_plan();
    let id = host(&room, json!({"kind": "hosted"})).await;
    let arrive = |name: &str| room.guest_arrive(id.clone(), name.into(), None, GUEST);
    let alice = arrive("Alice").await.unwrap();
    let bob = arrive("Bob").await.unwrap();
    let moderate = |who: &GuestTicket, action: serde_json::Value| {
        room.guest_moderate(
            id.clone(),
            who.guest_id.clone(),
            who.token.clone(),
            serde_json::from_value(action).unwrap(),
        )
    };
    // The lobby is in the plan for moderators' pages.
    assert_eq!(plans.borrow().clone().unwrap().lobby.len(), 2);
    // Only the host makes moderators, and only of guests in the meeting.
    let err = room
        .execute(
            RoomCommand::parse(
                "meeting.moderator.grant",
                &json!({"participant": alice.guest_id}),
            )
            .unwrap(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no guest"), "{err}");
    room.execute(RoomCommand::AdmitParticipant {
        id: alice.guest_id.clone(),
    })
    .await
    .unwrap();
    let err = moderate(
        &alice,
        json!({"action": "admit", "participant": bob.guest_id}),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, CoreError::Forbidden(_)), "{err}");
    room.execute(
        RoomCommand::parse(
            "meeting.moderator.grant",
            &json!({"participant": alice.guest_id}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        room.status().tree["meeting"]["moderation"]["moderators"],
        json!([alice.guest_id])
    );

    // A moderator admits, hands over the presenter role, asks to mute, removes and locks.
    moderate(
        &alice,
        json!({"action": "admit", "participant": bob.guest_id}),
    )
    .await
    .unwrap();
    assert!(
        plans
            .borrow()
            .clone()
            .unwrap()
            .lobby
            .iter()
            .all(|g| g.id != bob.guest_id)
    );
    moderate(
        &alice,
        json!({"action": "grant_presenter", "participant": bob.guest_id}),
    )
    .await
    .unwrap();
    assert_eq!(
        room.status().tree["meeting"]["moderation"]["presenter"],
        json!(bob.guest_id)
    );
    moderate(
        &alice,
        json!({"action": "ask_to_mute", "participant": bob.guest_id}),
    )
    .await
    .unwrap();
    let plan = plans.borrow().clone().unwrap();
    assert_eq!(plan.mute_requests.len(), 1);
    assert_eq!(plan.mute_requests[0].participant, bob.guest_id);
    assert_eq!(plan.mute_requests[0].from, "Alice");
    // Bob is no moderator: he may not.
    let err = moderate(
        &bob,
        json!({"action": "remove", "participant": alice.guest_id}),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, CoreError::Forbidden(_)), "{err}");
    moderate(
        &alice,
        json!({"action": "remove", "participant": bob.guest_id}),
    )
    .await
    .unwrap();
    assert_eq!(
        room.guest_state(id.clone(), bob.guest_id.clone(), bob.token.clone())
            .await
            .unwrap(),
        GuestState::Removed
    );
    assert_eq!(
        room.status().tree["meeting"]["moderation"]["presenter"],
        json!(null),
        "a removed presenter is none"
    );
    moderate(&alice, json!({"action": "lock"})).await.unwrap();
    let err = arrive("Carol").await.unwrap_err();
    assert!(err.to_string().contains("locked"), "{err}");
    room.execute(RoomCommand::LockMeeting { locked: false })
        .await
        .unwrap();
    let carol = arrive("Carol").await.unwrap();
    room.execute(RoomCommand::AdmitParticipant {
        id: carol.guest_id.clone(),
    })
    .await
    .unwrap();
    room.execute(RoomCommand::SetModerator {
        id: carol.guest_id.clone(),
        moderator: true,
    })
    .await
    .unwrap();
    // Moderators do not remove each other; the host takes the role back.
    let err = moderate(
        &carol,
        json!({"action": "remove", "participant": alice.guest_id}),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("only the room"), "{err}");
    room.execute(RoomCommand::SetModerator {
        id: carol.guest_id.clone(),
        moderator: false,
    })
    .await
    .unwrap();
    let err = moderate(&carol, json!({"action": "lock"}))
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::Forbidden(_)), "{err}");

    // A moderator ends the meeting for everyone; it is in the call history.
    moderate(&alice, json!({"action": "end"})).await.unwrap();
    assert_eq!(room.status().tree["meeting"]["state"], "idle");
    assert!(plans.borrow().is_none());
    assert_eq!(
        CallHistory::in_state_dir(dir.path())
            .list(30)
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn policy_can_require_a_pin_and_let_known_names_with_it_skip_the_lobby() {
    let dir = tempfile::tempdir().unwrap();
    let mut setup = setup(&dir);
    setup.config.meeting.require_pin = true;
    setup.config.meeting.lobby = roomd_model::config::LobbyPolicy::UnknownNames;
    setup.config.meeting.known_guest_names = vec!["Dr. Weber".into()];
    let (room, _task) = spawn(setup);
    let err = room
        .execute(join(json!({"kind": "hosted"})))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("meeting.require_pin"), "{err}");
    let id = host(&room, json!({"kind": "hosted", "pin": "4711"})).await;
    let pin = || Some(Secret::new("4711".into()));
    let known = room
        .guest_arrive(id.clone(), "dr. weber ".into(), pin(), GUEST)
        .await
        .unwrap();
    assert_eq!(known.state, GuestState::Admitted);
    room.guest_admitted(id.clone(), known.guest_id, known.token)
        .await
        .unwrap();
    let unknown = room
        .guest_arrive(id.clone(), "Mallory".into(), pin(), GUEST)
        .await
        .unwrap();
    assert_eq!(unknown.state, GuestState::Lobby);
    // Without the PIN, the known name gets nowhere.
    let err = room
        .guest_arrive(id, "Dr. Weber".into(), None, GUEST)
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::Forbidden(_)), "{err}");
}
