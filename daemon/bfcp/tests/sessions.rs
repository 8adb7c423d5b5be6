//! The two roles against each other over real loopback sockets (UDP and TCP), and the
//! participant against a scripted far end on a raw UDP socket, for what a well-behaved peer
//! never shows: lost datagrams, repeated notifications, silence.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use roomd_bfcp::{
    Attribute, CloseReason, ErrorCode, FloorEvent, FloorIds, FloorServer, Header, Message,
    Participant, Primitive, RequestStatus, ServerIds, SessionError, Timers, Transport, Version,
};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

const CONFERENCE: u32 = 4711;
const FAR_END: u16 = 2;
const ROOM: u16 = 1;
const FLOOR: u16 = 3;
const WAIT: Duration = Duration::from_secs(5);

/// Short timers, so that retransmission and silence take a fraction of a second.
fn quick() -> Timers {
    Timers {
        t1: Duration::from_millis(40),
        transmissions: 4,
        answer_lifetime: Duration::from_secs(2),
    }
}

async fn next(events: &mut mpsc::Receiver<FloorEvent>) -> FloorEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event within 5 s")
        .expect("the session sends Closed before it ends")
}

async fn udp_pair() -> (UdpSocket, UdpSocket) {
    let a = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let b = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    (a, b)
}

fn participant_ids() -> FloorIds {
    FloorIds {
        conference_id: CONFERENCE,
        user_id: FAR_END,
        floor_id: FLOOR,
    }
}

fn server_ids() -> ServerIds {
    ServerIds {
        conference_id: CONFERENCE,
        floor_id: FLOOR,
        far_end_user_id: FAR_END,
        room_user_id: ROOM,
    }
}

/// The whole floor dance between our two roles: the participant's side is "the far end"
/// here, the server's side "the room".
async fn floor_dance(participant_transport: Transport, server_transport: Transport) {
    let (server, mut room) = FloorServer::start(server_transport, server_ids(), quick());
    let (participant, mut far) =
        Participant::start(participant_transport, participant_ids(), quick());

    assert_eq!(next(&mut far).await, FloorEvent::Connected);
    assert_eq!(next(&mut far).await, FloorEvent::Free);
    assert_eq!(next(&mut room).await, FloorEvent::Connected);

    // The far end presents: granted at once.
    assert_eq!(
        participant.request_floor().await.expect("answered"),
        RequestStatus::Granted
    );
    assert_eq!(next(&mut far).await, FloorEvent::Granted);
    assert_eq!(
        next(&mut room).await,
        FloorEvent::HeldBy {
            user_id: Some(FAR_END)
        }
    );
    // Asking again while holding changes nothing and sends nothing.
    assert_eq!(
        participant.request_floor().await.expect("answered"),
        RequestStatus::Granted
    );

    // The room presents: the far end's grant is revoked and it learns who holds the floor.
    server.take_floor().await.expect("taken");
    assert_eq!(next(&mut room).await, FloorEvent::Granted);
    assert_eq!(
        next(&mut far).await,
        FloorEvent::Revoked { status_info: None }
    );
    assert_eq!(
        next(&mut far).await,
        FloorEvent::HeldBy {
            user_id: Some(ROOM)
        }
    );

    // The far end presents again: the last one to present takes the floor.
    assert_eq!(
        participant.request_floor().await.expect("answered"),
        RequestStatus::Granted
    );
    assert_eq!(next(&mut far).await, FloorEvent::Granted);
    assert_eq!(
        next(&mut room).await,
        FloorEvent::Revoked { status_info: None }
    );
    assert_eq!(
        next(&mut room).await,
        FloorEvent::HeldBy {
            user_id: Some(FAR_END)
        }
    );

    participant.release_floor().await.expect("released");
    assert_eq!(next(&mut far).await, FloorEvent::Released);
    assert_eq!(next(&mut room).await, FloorEvent::Free);
    assert_eq!(next(&mut far).await, FloorEvent::Free);
    // Nothing held: nothing to release.
    participant.release_floor().await.expect("nothing to do");

    participant.close().await.expect("Goodbye answered");
    assert_eq!(next(&mut far).await, FloorEvent::Closed(CloseReason::Local));
    assert_eq!(
        next(&mut room).await,
        FloorEvent::Closed(CloseReason::Goodbye)
    );
    assert!(matches!(
        participant.request_floor().await,
        Err(SessionError::Ended)
    ));
    assert!(matches!(
        server.take_floor().await,
        Err(SessionError::Ended)
    ));
}

#[tokio::test]
async fn participant_and_server_share_the_floor_over_udp() {
    let (a, b) = udp_pair().await;
    let (a_address, b_address) = (a.local_addr().expect("a"), b.local_addr().expect("b"));
    floor_dance(
        Transport::Udp {
            socket: a,
            remote: b_address,
        },
        Transport::Udp {
            socket: b,
            remote: a_address,
        },
    )
    .await;
}

#[tokio::test]
async fn participant_and_server_share_the_floor_over_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let address = listener.local_addr().expect("address");
    let (connected, accepted) = tokio::join!(TcpStream::connect(address), listener.accept());
    let client = connected.expect("connected");
    let (server, _) = accepted.expect("accepted");
    floor_dance(
        Transport::Tcp(Box::new(client)),
        Transport::Tcp(Box::new(server)),
    )
    .await;
}

#[tokio::test]
async fn the_server_refuses_what_it_cannot_take_with_the_error_rfc_8855_names() {
    let (ours, far) = udp_pair().await;
    let far_address = far.local_addr().expect("far");
    let ours_address = ours.local_addr().expect("ours");
    let (_server, _events) = FloorServer::start(
        Transport::Udp {
            socket: ours,
            remote: far_address,
        },
        server_ids(),
        quick(),
    );
    let mut buffer = vec![0u8; 2048];
    let mut ask = async |bytes: Vec<u8>| -> Message {
        far.send_to(&bytes, ours_address).await.expect("send");
        let (n, _) = tokio::time::timeout(WAIT, far.recv_from(&mut buffer))
            .await
            .expect("answered")
            .expect("received");
        Message::decode(&buffer[..n]).expect("decodes")
    };
    // Each request a transaction of its own: the same IDs again would be a retransmission,
    // answered from the cache.
    let transaction = std::cell::Cell::new(70u16);
    let request = |primitive, conference_id, user_id, attributes| {
        transaction.set(transaction.get() + 1);
        Message {
            header: Header {
                version: Version::V2,
                responder: false,
                primitive,
                conference_id,
                transaction_id: transaction.get(),
                user_id,
            },
            attributes,
        }
        .encode()
        .expect("encodes")
    };
    let code = |answer: &Message| answer.error().map(|(code, _)| code);

    let answer = ask(request(Primitive::Hello, 999, FAR_END, vec![])).await;
    assert_eq!(code(&answer), Some(ErrorCode::CONFERENCE_DOES_NOT_EXIST));
    assert!(answer.header.responder);
    assert_eq!(answer.header.transaction_id, transaction.get());

    let answer = ask(request(Primitive::Hello, CONFERENCE, 99, vec![])).await;
    assert_eq!(code(&answer), Some(ErrorCode::USER_DOES_NOT_EXIST));

    let wrong_floor = vec![Attribute::FloorId(FLOOR + 1)];
    let answer = ask(request(
        Primitive::FloorRequest,
        CONFERENCE,
        FAR_END,
        wrong_floor,
    ))
    .await;
    assert_eq!(code(&answer), Some(ErrorCode::INVALID_FLOOR_ID));

    let unknown = vec![
        Attribute::FloorId(FLOOR),
        Attribute::Unknown {
            kind: 60,
            mandatory: true,
            contents: vec![1],
        },
    ];
    let answer = ask(request(
        Primitive::FloorRequest,
        CONFERENCE,
        FAR_END,
        unknown,
    ))
    .await;
    assert_eq!(
        answer.attributes[0],
        Attribute::ErrorCode {
            code: ErrorCode::UNKNOWN_MANDATORY_ATTRIBUTE,
            details: vec![60 << 1]
        }
    );

    let answer = ask(request(Primitive::ChairAction, CONFERENCE, FAR_END, vec![])).await;
    assert_eq!(code(&answer), Some(ErrorCode::UNAUTHORIZED_OPERATION));

    // Not BFCP at all past its header: an unknown primitive.
    let mut bogus = request(Primitive::Hello, CONFERENCE, FAR_END, vec![]);
    bogus[1] = 99;
    let answer = ask(bogus).await;
    assert_eq!(code(&answer), Some(ErrorCode::UNKNOWN_PRIMITIVE));

    // A payload length that does not match the datagram.
    let mut short = request(Primitive::Hello, CONFERENCE, FAR_END, vec![]);
    short[3] = 2;
    let answer = ask(short).await;
    assert_eq!(code(&answer), Some(ErrorCode::INCORRECT_MESSAGE_LENGTH));
}

/// A far end on a raw socket: reads what the participant sends, answers as told.
struct ScriptedServer {
    socket: UdpSocket,
    participant: SocketAddr,
    buffer: Vec<u8>,
}

impl ScriptedServer {
    async fn receive(&mut self) -> (Message, Instant) {
        let (n, from) = tokio::time::timeout(WAIT, self.socket.recv_from(&mut self.buffer))
            .await
            .expect("a message within 5 s")
            .expect("received");
        assert_eq!(from, self.participant);
        (
            Message::decode(&self.buffer[..n]).expect("decodes"),
            Instant::now(),
        )
    }

    async fn send(&self, message: Message) {
        let bytes = message.encode().expect("encodes");
        self.socket
            .send_to(&bytes, self.participant)
            .await
            .expect("sent");
    }

    fn answer(request: &Message, primitive: Primitive, attributes: Vec<Attribute>) -> Message {
        Message {
            header: Header {
                responder: true,
                primitive,
                ..request.header
            },
            attributes,
        }
    }
}

/// The scripted far end, the participant talking to it, its events, and when it started.
async fn scripted() -> (
    ScriptedServer,
    Participant,
    mpsc::Receiver<FloorEvent>,
    Instant,
) {
    let (ours, far) = udp_pair().await;
    let far_address = far.local_addr().expect("far");
    let participant_address = ours.local_addr().expect("ours");
    let started = Instant::now();
    let (participant, events) = Participant::start(
        Transport::Udp {
            socket: ours,
            remote: far_address,
        },
        participant_ids(),
        quick(),
    );
    let server = ScriptedServer {
        socket: far,
        participant: participant_address,
        buffer: vec![0; 2048],
    };
    (server, participant, events, started)
}

fn floor_request_information(id: u16, status: RequestStatus) -> Attribute {
    Attribute::FloorRequestInformation {
        floor_request_id: id,
        attributes: vec![Attribute::OverallRequestStatus {
            floor_request_id: id,
            attributes: vec![Attribute::RequestStatus {
                status,
                queue_position: 0,
            }],
        }],
    }
}

#[tokio::test]
async fn requests_are_retransmitted_after_t1_doubling_until_answered() {
    let (mut server, _participant, mut events, started) = scripted().await;
    let (first, _) = server.receive().await;
    let (second, at_second) = server.receive().await;
    let (third, at_third) = server.receive().await;
    for again in [&second, &third] {
        assert_eq!(again, &first, "a retransmission is the same message");
    }
    assert_eq!(first.header.primitive, Primitive::Hello);
    assert_eq!(first.header.version, Version::V2);
    assert!(!first.header.responder);
    assert_ne!(first.header.transaction_id, 0);
    // Lower bounds from the start: a loaded machine only makes them later. T1 is 40 ms.
    let (second_after, third_after) = (at_second - started, at_third - started);
    assert!(
        second_after >= Duration::from_millis(40),
        "{second_after:?}"
    );
    assert!(
        third_after >= Duration::from_millis(40 + 80),
        "{third_after:?}"
    );
    server
        .send(ScriptedServer::answer(&third, Primitive::HelloAck, vec![]))
        .await;
    assert_eq!(next(&mut events).await, FloorEvent::Connected);
    // And no fourth Hello: the next message is the FloorQuery.
    let (query, _) = server.receive().await;
    assert_eq!(query.header.primitive, Primitive::FloorQuery);
    assert_eq!(query.floor_ids(), vec![FLOOR]);
}

#[tokio::test]
async fn a_far_end_that_never_answers_ends_the_session_after_four_transmissions() {
    let (mut server, participant, mut events, started) = scripted().await;
    let mut last = started;
    for _ in 0..4 {
        let (hello, at) = server.receive().await;
        assert_eq!(hello.header.primitive, Primitive::Hello);
        last = at;
    }
    // Doubling, not a constant interval: 40 + 80 + 160 ms before the fourth.
    assert!(
        last - started >= Duration::from_millis(280),
        "{:?}",
        last - started
    );
    assert_eq!(
        next(&mut events).await,
        FloorEvent::Closed(CloseReason::NoAnswer)
    );
    // and 320 ms more for its answer
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(
        participant.request_floor().await,
        Err(SessionError::Ended)
    ));
    let silence = tokio::time::timeout(
        Duration::from_millis(300),
        server.socket.recv_from(&mut [0; 64]),
    )
    .await;
    assert!(silence.is_err(), "a fifth transmission");
}

#[tokio::test]
async fn a_repeated_notification_is_acknowledged_again_and_acted_on_once() {
    let (mut server, participant, mut events, _) = scripted().await;
    let (hello, _) = server.receive().await;
    server
        .send(ScriptedServer::answer(&hello, Primitive::HelloAck, vec![]))
        .await;
    let (query, _) = server.receive().await;
    server
        .send(ScriptedServer::answer(
            &query,
            Primitive::FloorStatus,
            vec![Attribute::FloorId(FLOOR)],
        ))
        .await;
    assert_eq!(next(&mut events).await, FloorEvent::Connected);
    assert_eq!(next(&mut events).await, FloorEvent::Free);

    let asker = participant.clone();
    let asking = tokio::spawn(async move { asker.request_floor().await });
    let (request, _) = server.receive().await;
    assert_eq!(request.header.primitive, Primitive::FloorRequest);
    assert_eq!(request.floor_ids(), vec![FLOOR]);
    server
        .send(ScriptedServer::answer(
            &request,
            Primitive::FloorRequestStatus,
            vec![floor_request_information(9, RequestStatus::Pending)],
        ))
        .await;
    assert_eq!(
        asking.await.expect("joined").expect("answered"),
        RequestStatus::Pending
    );
    assert_eq!(
        next(&mut events).await,
        FloorEvent::Pending { queue_position: 0 }
    );

    let granted = Message {
        header: Header {
            version: Version::V2,
            responder: false,
            primitive: Primitive::FloorRequestStatus,
            conference_id: CONFERENCE,
            transaction_id: 500,
            user_id: FAR_END,
        },
        attributes: vec![floor_request_information(9, RequestStatus::Granted)],
    };
    for _ in 0..2 {
        server.send(granted.clone()).await;
        let (ack, _) = server.receive().await;
        assert_eq!(ack.header.primitive, Primitive::FloorRequestStatusAck);
        assert_eq!(ack.header.transaction_id, 500);
        assert!(ack.header.responder);
        assert_eq!(ack.header.user_id, FAR_END);
    }
    assert_eq!(next(&mut events).await, FloorEvent::Granted);
    let quiet = tokio::time::timeout(Duration::from_millis(200), events.recv()).await;
    assert!(quiet.is_err(), "the repeat was acted on: {quiet:?}");
}

#[tokio::test]
async fn a_refused_floor_request_says_why() {
    let (mut server, participant, mut events, _) = scripted().await;
    let (hello, _) = server.receive().await;
    server
        .send(ScriptedServer::answer(&hello, Primitive::HelloAck, vec![]))
        .await;
    let _query = server.receive().await;
    assert_eq!(next(&mut events).await, FloorEvent::Connected);
    let asker = participant.clone();
    let asking = tokio::spawn(async move { asker.request_floor().await });
    let (request, _) = server.receive().await;
    server
        .send(ScriptedServer::answer(
            &request,
            Primitive::Error,
            vec![
                Attribute::ErrorCode {
                    code: ErrorCode::MAX_FLOOR_REQUESTS_REACHED,
                    details: vec![],
                },
                Attribute::ErrorInfo("one at a time".to_owned()),
            ],
        ))
        .await;
    let error = asking.await.expect("joined").expect_err("refused");
    assert_eq!(
        error.to_string(),
        "the far end refused FloorRequest: error 8 (Maximum Number of Ongoing Floor Requests Reached): one at a time"
    );
}

#[tokio::test]
async fn a_far_end_that_acknowledges_nothing_does_not_end_the_servers_session() {
    let (ours, far) = udp_pair().await;
    let far_address = far.local_addr().expect("far");
    let ours_address = ours.local_addr().expect("ours");
    let (server, mut events) = FloorServer::start(
        Transport::Udp {
            socket: ours,
            remote: far_address,
        },
        server_ids(),
        quick(),
    );
    let mut far = ScriptedServer {
        socket: far,
        participant: ours_address,
        buffer: vec![0; 2048],
    };
    let request = |primitive, transaction_id, attributes| Message {
        header: Header {
            version: Version::V2,
            responder: false,
            primitive,
            conference_id: CONFERENCE,
            transaction_id,
            user_id: FAR_END,
        },
        attributes,
    };
    // Subscribe to the floor's status, then never acknowledge a notification.
    far.send(request(
        Primitive::FloorQuery,
        1,
        vec![Attribute::FloorId(FLOOR)],
    ))
    .await;
    let (status, _) = far.receive().await;
    assert_eq!(status.header.primitive, Primitive::FloorStatus);
    assert_eq!(next(&mut events).await, FloorEvent::Connected);
    // Twenty changes in a row: more notifications than may wait for acknowledgements.
    for _ in 0..10 {
        server.take_floor().await.expect("taken");
        server.release_floor().await.expect("released");
    }
    far.send(request(Primitive::Hello, 2, vec![])).await;
    loop {
        let (message, _) = far.receive().await;
        if message.header.primitive == Primitive::HelloAck {
            break;
        }
        // (retransmitted notifications come in between)
        assert_eq!(message.header.primitive, Primitive::FloorStatus);
    }
    server.take_floor().await.expect("the session goes on");
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(50), events.recv()).await
    {
        assert!(!matches!(event, FloorEvent::Closed(_)), "{event:?}");
    }
}
