//! roomd-bfcp against libre's BFCP (Debian libre-dev 1.1), an implementation written
//! independently of ours, over UDP on 127.0.0.1 (BFCP has no ICE; libre 1.1 has no BFCP over
//! TCP). Both sides must see each step: our events, libre's printed lines
//! (tests/bfcp-peer/bfcp_peer.c). A failure shows libre's output.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use roomd_bfcp::{
    CloseReason, FloorEvent, FloorIds, FloorServer, Participant, RequestStatus, ServerIds,
    SessionError, Timers, Transport,
};
use roomd_tests::HarnessError;
use roomd_tests::bfcp_peer::{LibrePeer, free_udp_port};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

const CONFERENCE: u32 = 16_777_300;
const FLOOR: u16 = 3;
const ROOM_USER: u16 = 1;
const FAR_END_USER: u16 = 2;
/// Each step on loopback takes milliseconds; a retransmitted one at most 7.5 s.
const STEP: Duration = Duration::from_secs(10);

/// Our roles run on worker threads while the test blocks on libre's output.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn udp_socket(runtime: &Runtime) -> Result<tokio::net::UdpSocket, HarnessError> {
    runtime
        .block_on(tokio::net::UdpSocket::bind(loopback(0)))
        .map_err(|e| HarnessError::Io {
            what: "cannot bind a UDP socket".to_owned(),
            source: e,
        })
}

/// Our side failed: say so with libre's side of the story.
fn ours_failed(what: &str, error: SessionError, libre: &LibrePeer) -> HarnessError {
    HarnessError::PeerFailed {
        peer: "roomd-bfcp".to_owned(),
        what: what.to_owned(),
        message: format!("{error}; libre's output:\n{}", libre.output()),
    }
}

/// Waits for our session's next events until `expected` (the ones before it are listed on
/// failure, but do not fail the test: libre's timing decides e.g. when Free is told).
fn expect_event(
    runtime: &Runtime,
    events: &mut mpsc::Receiver<FloorEvent>,
    expected: FloorEvent,
    libre: &LibrePeer,
) -> Result<(), HarnessError> {
    let mut seen = Vec::new();
    let outcome = runtime.block_on(async {
        tokio::time::timeout(STEP, async {
            while let Some(event) = events.recv().await {
                if event == expected {
                    return true;
                }
                seen.push(event);
            }
            false
        })
        .await
    });
    match outcome {
        Ok(true) => Ok(()),
        Ok(false) | Err(_) => Err(HarnessError::PeerFailed {
            peer: "roomd-bfcp".to_owned(),
            what: format!("{expected:?}"),
            message: format!(
                "{} within {STEP:?}; events before: {seen:?}; libre's output:\n{}",
                if outcome.is_err() {
                    "not seen"
                } else {
                    "session ended"
                },
                libre.output()
            ),
        }),
    }
}

#[test]
fn the_room_takes_and_releases_the_floor_at_libres_floor_control_server() -> Result<(), HarnessError>
{
    let runtime = runtime();
    let mut libre = LibrePeer::server(CONFERENCE, FLOOR)?;
    let socket = udp_socket(&runtime)?;
    let transport = Transport::Udp {
        socket,
        remote: loopback(libre.port()),
    };
    let ids = FloorIds {
        conference_id: CONFERENCE,
        user_id: ROOM_USER,
        floor_id: FLOOR,
    };
    let (participant, mut events) = {
        let _inside = runtime.enter();
        Participant::start(transport, ids, Timers::default())
    };

    // Hello, then FloorQuery: libre says the floor is free.
    expect_event(&runtime, &mut events, FloorEvent::Connected, &libre)?;
    libre.wait_for_line(&format!("hello user={ROOM_USER}"), STEP)?;
    libre.wait_for_line(&format!("floor-query user={ROOM_USER}"), STEP)?;
    expect_event(&runtime, &mut events, FloorEvent::Free, &libre)?;

    // The room asks; libre answers Pending, then grants by a FloorRequestStatus of its own,
    // which we must acknowledge.
    let status = runtime
        .block_on(participant.request_floor())
        .map_err(|e| ours_failed("FloorRequest answered", e, &libre))?;
    assert_eq!(
        status,
        RequestStatus::Pending,
        "libre answers Pending first"
    );
    libre.wait_for_line(
        &format!("floor-request user={ROOM_USER} floor={FLOOR}"),
        STEP,
    )?;
    expect_event(&runtime, &mut events, FloorEvent::Granted, &libre)?;
    libre.wait_for_line(&format!("granted frid=1 user={ROOM_USER}"), STEP)?;
    libre.wait_for_line("ack FloorRequestStatusAck", STEP)?;
    assert!(
        !libre.printed("ack-missing"),
        "libre got no acknowledgement:\n{}",
        libre.output()
    );

    // The room gives the floor back.
    runtime
        .block_on(participant.release_floor())
        .map_err(|e| ours_failed("FloorRelease answered", e, &libre))?;
    expect_event(&runtime, &mut events, FloorEvent::Released, &libre)?;
    libre.wait_for_line(&format!("released frid=1 user={ROOM_USER}"), STEP)?;

    // And says Goodbye.
    runtime
        .block_on(participant.close())
        .map_err(|e| ours_failed("Goodbye answered", e, &libre))?;
    libre.wait_for_line(&format!("goodbye user={ROOM_USER}"), STEP)?;
    expect_event(
        &runtime,
        &mut events,
        FloorEvent::Closed(CloseReason::Local),
        &libre,
    )?;
    assert!(
        !libre.printed("unexpected"),
        "libre saw a primitive it did not expect:\n{}",
        libre.output()
    );
    Ok(())
}

/// Starts our server for a libre participant on `libre_port`; returns it, its events and its
/// own port.
fn our_server(
    runtime: &Runtime,
    libre_port: u16,
) -> Result<(FloorServer, mpsc::Receiver<FloorEvent>, u16), HarnessError> {
    let socket = udp_socket(runtime)?;
    let port = socket
        .local_addr()
        .map_err(|e| HarnessError::Io {
            what: "cannot read the UDP socket's port".to_owned(),
            source: e,
        })?
        .port();
    let ids = ServerIds {
        conference_id: CONFERENCE,
        floor_id: FLOOR,
        far_end_user_id: FAR_END_USER,
        room_user_id: ROOM_USER,
    };
    let transport = Transport::Udp {
        socket,
        remote: loopback(libre_port),
    };
    let _inside = runtime.enter();
    let (server, events) = FloorServer::start(transport, ids, Timers::default());
    Ok((server, events, port))
}

#[test]
fn libres_participant_is_granted_and_revoked_when_the_room_presents() -> Result<(), HarnessError> {
    let runtime = runtime();
    let libre_port = free_udp_port()?;
    let (server, mut events, port) = our_server(&runtime, libre_port)?;
    // libre would give the floor back after 30 s: long after the room takes it.
    let mut libre = LibrePeer::client(
        libre_port,
        port,
        CONFERENCE,
        FAR_END_USER,
        FLOOR,
        Duration::from_secs(30),
    )?;

    // libre says Hello, asks FloorQuery (free) and FloorRequest: granted at once.
    libre.wait_for_line("hello-ack", STEP)?;
    libre.wait_for_line(&format!("floor-status floor={FLOOR} free"), STEP)?;
    libre.wait_for_line("status Granted frid=1", STEP)?;
    expect_event(&runtime, &mut events, FloorEvent::Connected, &libre)?;
    expect_event(
        &runtime,
        &mut events,
        FloorEvent::HeldBy {
            user_id: Some(FAR_END_USER),
        },
        &libre,
    )?;

    // The room presents: libre's grant is revoked, and FloorStatus tells it the room holds
    // the floor (libre subscribed with its FloorQuery).
    runtime
        .block_on(server.take_floor())
        .map_err(|e| ours_failed("the floor taken", e, &libre))?;
    expect_event(&runtime, &mut events, FloorEvent::Granted, &libre)?;
    libre.wait_for_line("status Revoked frid=1", STEP)?;
    libre.wait_for_line(
        &format!("floor-status floor={FLOOR} holder={ROOM_USER} frid=2"),
        STEP,
    )?;

    // The room stops presenting: libre is told the floor is free.
    runtime
        .block_on(server.release_floor())
        .map_err(|e| ours_failed("the floor released", e, &libre))?;
    expect_event(&runtime, &mut events, FloorEvent::Free, &libre)?;
    // (the first "free" was the answer to its FloorQuery)
    libre.wait_for_lines(&format!("floor-status floor={FLOOR} free"), 2, STEP)?;

    // Goodbye from the room; libre answers it.
    runtime
        .block_on(server.close())
        .map_err(|e| ours_failed("Goodbye answered", e, &libre))?;
    libre.wait_for_line("goodbye", STEP)?;
    expect_event(
        &runtime,
        &mut events,
        FloorEvent::Closed(CloseReason::Local),
        &libre,
    )?;
    assert!(
        !libre.printed("release"),
        "libre released a floor that was taken from it:\n{}",
        libre.output()
    );
    assert!(
        !libre.printed("unexpected"),
        "libre saw a primitive it did not expect:\n{}",
        libre.output()
    );
    Ok(())
}

#[test]
fn libres_participant_releases_the_floor_it_was_granted() -> Result<(), HarnessError> {
    let runtime = runtime();
    let libre_port = free_udp_port()?;
    let (_server, mut events, port) = our_server(&runtime, libre_port)?;
    let mut libre = LibrePeer::client(
        libre_port,
        port,
        CONFERENCE,
        FAR_END_USER,
        FLOOR,
        Duration::from_millis(300),
    )?;
    libre.wait_for_line("status Granted frid=1", STEP)?;
    expect_event(
        &runtime,
        &mut events,
        FloorEvent::HeldBy {
            user_id: Some(FAR_END_USER),
        },
        &libre,
    )?;
    libre.wait_for_line("release-status Released frid=1", STEP)?;
    expect_event(&runtime, &mut events, FloorEvent::Free, &libre)?;
    Ok(())
}
