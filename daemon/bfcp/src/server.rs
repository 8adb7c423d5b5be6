//! A small floor control server (RFC 8855 §13) for far ends that are floor participants only
//! (`a=floorctrl:c-only`, RFC 8856): one conference, one floor, two users, the far end and the
//! room.
//!
//! The floor goes to whoever asks last, as room systems share content: a FloorRequest from
//! the far end is granted at once, even while the room presents (the room's hold ends,
//! [`FloorEvent::Revoked`]); and when the room takes the floor while the far end holds it,
//! the far end's request is revoked (FloorRequestStatus Revoked). A far end that asked
//! FloorQuery is told every change by FloorStatus. Over UDP what the server sends of its own
//! is retransmitted until the far end acknowledges it.

use tokio::sync::{mpsc, oneshot};

use crate::attribute::{Attribute, ErrorCode, LAST_KNOWN_KIND, RequestStatus};
use crate::error::SessionError;
use crate::event::{CloseReason, Events, FloorEvent, close_reason};
use crate::floor::floor_request_information;
use crate::message::{Header, Message, Primitive};
use crate::transaction::{Endpoint, Happening, Timers};
use crate::transport::Transport;

/// The IDs of the server's conference, as its SDP says them to the far end (RFC 8856:
/// `a=confid`, `a=userid`, `a=floorid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerIds {
    /// The conference ID.
    pub conference_id: u32,
    /// The one floor (the content stream's).
    pub floor_id: u16,
    /// The user ID given to the far end; its messages must carry it.
    pub far_end_user_id: u16,
    /// The room's own user ID, shown as the floor's holder while the room presents.
    pub room_user_id: u16,
}

/// The room's handle on a floor control server session. Clones share the session; it ends
/// when [`FloorServer::close`] is called, the far end says Goodbye, or the last clone is
/// dropped.
#[derive(Debug, Clone)]
pub struct FloorServer {
    commands: mpsc::Sender<Command>,
}

#[derive(Debug)]
enum Command {
    Take(oneshot::Sender<Result<(), SessionError>>),
    Release(oneshot::Sender<Result<(), SessionError>>),
    Close(oneshot::Sender<Result<(), SessionError>>),
}

impl FloorServer {
    /// Starts serving the far end over `transport` on the current Tokio runtime (must be
    /// called inside one). The floor starts free. Returns the handle and the session's
    /// events; the last event is always [`FloorEvent::Closed`].
    pub fn start(
        transport: Transport,
        ids: ServerIds,
        timers: Timers,
    ) -> (FloorServer, mpsc::Receiver<FloorEvent>) {
        let (events, receiver) = Events::new();
        let (commands, command_receiver) = mpsc::channel(8);
        let session = Session {
            endpoint: Endpoint::new(transport, timers, ids.conference_id),
            ids,
            events,
            commands: command_receiver,
            holder: Holder::Nobody,
            last_floor_request_id: 0,
            subscribed: false,
            connected: false,
            closing: false,
        };
        tokio::spawn(session.run());
        (FloorServer { commands }, receiver)
    }

    /// The room takes the floor; if the far end holds it, its request is revoked. Returns
    /// once that is sent (not acknowledged: the room presents at once).
    pub async fn take_floor(&self) -> Result<(), SessionError> {
        self.ask(Command::Take).await
    }

    /// The room gives the floor back (nothing to do when it does not hold it).
    pub async fn release_floor(&self) -> Result<(), SessionError> {
        self.ask(Command::Release).await
    }

    /// Says Goodbye, waits for its answer (bounded by [`Timers::answer_timeout`]) and ends
    /// the session.
    pub async fn close(&self) -> Result<(), SessionError> {
        self.ask(Command::Close).await
    }

    async fn ask(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<(), SessionError>>) -> Command,
    ) -> Result<(), SessionError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| SessionError::Ended)?;
        answer.await.map_err(|_| SessionError::Ended)?
    }
}

/// Who holds the floor, with the floor request that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    Nobody,
    FarEnd(u16),
    Room(u16),
}

/// What a message we sent of our own is for.
enum Purpose {
    /// A FloorRequestStatus or FloorStatus: only its acknowledgement is waited for.
    Notification,
    Goodbye(Option<oneshot::Sender<Result<(), SessionError>>>),
}

struct Session {
    endpoint: Endpoint<Purpose>,
    ids: ServerIds,
    events: Events,
    commands: mpsc::Receiver<Command>,
    holder: Holder,
    last_floor_request_id: u16,
    /// The far end asked FloorQuery: it is told of every change.
    subscribed: bool,
    connected: bool,
    /// Our Goodbye is out: no more commands.
    closing: bool,
}

enum Step {
    Happening(Happening<Purpose>),
    Command(Option<Command>),
}

impl Session {
    async fn run(mut self) {
        let reason = close_reason(self.serve().await, "floor control server");
        self.events.send(FloorEvent::Closed(reason));
    }

    async fn serve(&mut self) -> Result<CloseReason, SessionError> {
        loop {
            let step = tokio::select! {
                happening = self.endpoint.next() => Step::Happening(happening?),
                command = self.commands.recv(), if !self.closing => Step::Command(command),
            };
            let ended = match step {
                Step::Happening(Happening::Incoming(message)) => self.on_incoming(message).await?,
                Step::Happening(Happening::Answered(purpose, answer)) => match purpose {
                    Purpose::Notification => {
                        if let Some((code, info)) = answer.error() {
                            tracing::warn!(
                                code = code.0,
                                info,
                                "the far end refused our BFCP notification"
                            );
                        }
                        None
                    }
                    Purpose::Goodbye(reply) => {
                        if let Some(reply) = reply {
                            let _ = reply.send(Ok(()));
                        }
                        Some(CloseReason::Local)
                    }
                },
                Step::Happening(Happening::Unanswered(purpose, error)) => match purpose {
                    Purpose::Notification => {
                        tracing::warn!(%error, "the far end did not acknowledge our BFCP notification");
                        None
                    }
                    Purpose::Goodbye(reply) => {
                        if let Some(reply) = reply {
                            let _ = reply.send(Err(error));
                        }
                        Some(CloseReason::Local)
                    }
                },
                Step::Command(Some(command)) => self.on_command(command).await?,
                Step::Command(None) => {
                    // Every handle is gone: tell the far end, without waiting for its answer.
                    self.say_goodbye(None).await?;
                    Some(CloseReason::Local)
                }
            };
            if let Some(reason) = ended {
                return Ok(reason);
            }
        }
    }

    async fn say_goodbye(
        &mut self,
        reply: Option<oneshot::Sender<Result<(), SessionError>>>,
    ) -> Result<(), SessionError> {
        self.closing = true;
        self.endpoint
            .request(
                self.ids.far_end_user_id,
                Primitive::Goodbye,
                vec![],
                Purpose::Goodbye(reply),
            )
            .await
    }

    fn new_floor_request_id(&mut self) -> u16 {
        self.last_floor_request_id = self.last_floor_request_id.wrapping_add(1).max(1);
        self.last_floor_request_id
    }

    async fn on_command(&mut self, command: Command) -> Result<Option<CloseReason>, SessionError> {
        match command {
            Command::Take(reply) => {
                if let Holder::FarEnd(id) = self.holder {
                    let revoked = floor_request_information(
                        id,
                        self.ids.floor_id,
                        RequestStatus::Revoked,
                        self.ids.far_end_user_id,
                    );
                    self.notify(Primitive::FloorRequestStatus, vec![revoked])
                        .await?;
                }
                if !matches!(self.holder, Holder::Room(_)) {
                    self.holder = Holder::Room(self.new_floor_request_id());
                    self.events.send(FloorEvent::Granted);
                    self.floor_changed().await?;
                }
                let _ = reply.send(Ok(()));
            }
            Command::Release(reply) => {
                if let Holder::Room(_) = self.holder {
                    self.holder = Holder::Nobody;
                    self.events.send(FloorEvent::Released);
                    self.events.send(FloorEvent::Free);
                    self.floor_changed().await?;
                }
                let _ = reply.send(Ok(()));
            }
            Command::Close(reply) => self.say_goodbye(Some(reply)).await?,
        }
        Ok(None)
    }

    /// A request from the far end.
    async fn on_incoming(&mut self, message: Message) -> Result<Option<CloseReason>, SessionError> {
        let header = message.header;
        if header.conference_id != self.ids.conference_id {
            let info = format!("this is conference {}", self.ids.conference_id);
            return self
                .refuse(&header, ErrorCode::CONFERENCE_DOES_NOT_EXIST, &info)
                .await;
        }
        if header.user_id != self.ids.far_end_user_id {
            let info = format!("user {} is not in this conference", header.user_id);
            return self
                .refuse(&header, ErrorCode::USER_DOES_NOT_EXIST, &info)
                .await;
        }
        let unknown = message.unknown_mandatory();
        if !unknown.is_empty() {
            let details = unknown.iter().map(|kind| kind << 1).collect();
            self.endpoint
                .answer_error(
                    &header,
                    ErrorCode::UNKNOWN_MANDATORY_ATTRIBUTE,
                    details,
                    "unknown mandatory attributes",
                )
                .await?;
            return Ok(None);
        }
        if !self.connected {
            self.connected = true;
            self.events.send(FloorEvent::Connected);
        }
        match header.primitive {
            Primitive::Hello => {
                self.endpoint
                    .answer(&header, Primitive::HelloAck, supported())
                    .await?;
            }
            Primitive::FloorRequest => return self.on_floor_request(&header, &message).await,
            Primitive::FloorRelease => return self.on_floor_release(&header, &message).await,
            Primitive::FloorRequestQuery => {
                let asked = message.floor_request_id();
                match self.holder {
                    Holder::FarEnd(id) | Holder::Room(id) if Some(id) == asked => {
                        let info = self.holder_information(RequestStatus::Granted);
                        self.endpoint
                            .answer(&header, Primitive::FloorRequestStatus, info)
                            .await?;
                    }
                    _ => {
                        return self
                            .refuse(
                                &header,
                                ErrorCode::FLOOR_REQUEST_ID_DOES_NOT_EXIST,
                                "no such floor request",
                            )
                            .await;
                    }
                }
            }
            Primitive::FloorQuery => {
                if message.floor_ids().iter().any(|f| *f != self.ids.floor_id) {
                    return self.refuse_floor(&header).await;
                }
                self.subscribed = true;
                let status = self.floor_status();
                self.endpoint
                    .answer(&header, Primitive::FloorStatus, status)
                    .await?;
            }
            Primitive::UserQuery => {
                let requests = match self.holder {
                    Holder::FarEnd(_) => self.holder_information(RequestStatus::Granted),
                    _ => vec![],
                };
                self.endpoint
                    .answer(&header, Primitive::UserStatus, requests)
                    .await?;
            }
            Primitive::Goodbye => {
                self.endpoint
                    .answer(&header, Primitive::GoodbyeAck, vec![])
                    .await?;
                if let Holder::FarEnd(_) = self.holder {
                    self.holder = Holder::Nobody;
                    self.events.send(FloorEvent::Free);
                }
                return Ok(Some(CloseReason::Goodbye));
            }
            Primitive::ChairAction => {
                return self
                    .refuse(
                        &header,
                        ErrorCode::UNAUTHORIZED_OPERATION,
                        "this conference has no chair",
                    )
                    .await;
            }
            other => {
                let info = format!("a floor control server does not take {other}");
                return self
                    .refuse(&header, ErrorCode::UNKNOWN_PRIMITIVE, &info)
                    .await;
            }
        }
        Ok(None)
    }

    async fn on_floor_request(
        &mut self,
        header: &Header,
        message: &Message,
    ) -> Result<Option<CloseReason>, SessionError> {
        let floors = message.floor_ids();
        if floors.is_empty() || floors.iter().any(|f| *f != self.ids.floor_id) {
            return self.refuse_floor(header).await;
        }
        let beneficiary = message.find(|a| match a {
            Attribute::BeneficiaryId(id) => Some(*id),
            _ => None,
        });
        if beneficiary.is_some_and(|b| b != header.user_id) {
            return self
                .refuse(
                    header,
                    ErrorCode::UNAUTHORIZED_OPERATION,
                    "floor requests on behalf of others are not taken",
                )
                .await;
        }
        // The last one to present takes the floor. A far end that asks again while it holds
        // the floor gets a new floor request; the one before is forgotten.
        let room_held = matches!(self.holder, Holder::Room(_));
        self.holder = Holder::FarEnd(self.new_floor_request_id());
        let granted = self.holder_information(RequestStatus::Granted);
        self.endpoint
            .answer(header, Primitive::FloorRequestStatus, granted)
            .await?;
        if room_held {
            self.events.send(FloorEvent::Revoked { status_info: None });
        }
        self.events.send(FloorEvent::HeldBy {
            user_id: Some(self.ids.far_end_user_id),
        });
        self.floor_changed().await?;
        Ok(None)
    }

    async fn on_floor_release(
        &mut self,
        header: &Header,
        message: &Message,
    ) -> Result<Option<CloseReason>, SessionError> {
        let Some(asked) = message.floor_request_id() else {
            return self
                .refuse(
                    header,
                    ErrorCode::PARSE_ERROR,
                    "FloorRelease needs FLOOR-REQUEST-ID",
                )
                .await;
        };
        if self.holder != Holder::FarEnd(asked) {
            return self
                .refuse(
                    header,
                    ErrorCode::FLOOR_REQUEST_ID_DOES_NOT_EXIST,
                    "no such floor request of yours",
                )
                .await;
        }
        let released = floor_request_information(
            asked,
            self.ids.floor_id,
            RequestStatus::Released,
            self.ids.far_end_user_id,
        );
        self.holder = Holder::Nobody;
        self.endpoint
            .answer(header, Primitive::FloorRequestStatus, vec![released])
            .await?;
        self.events.send(FloorEvent::Free);
        self.floor_changed().await?;
        Ok(None)
    }

    async fn refuse(
        &mut self,
        header: &Header,
        code: ErrorCode,
        info: &str,
    ) -> Result<Option<CloseReason>, SessionError> {
        self.endpoint
            .answer_error(header, code, vec![], info)
            .await?;
        Ok(None)
    }

    async fn refuse_floor(&mut self, header: &Header) -> Result<Option<CloseReason>, SessionError> {
        let info = format!("this conference has floor {} only", self.ids.floor_id);
        self.refuse(header, ErrorCode::INVALID_FLOOR_ID, &info)
            .await
    }

    /// FLOOR-REQUEST-INFORMATION of the request that holds the floor, in `status`.
    fn holder_information(&self, status: RequestStatus) -> Vec<Attribute> {
        let (id, user) = match self.holder {
            Holder::Nobody => return vec![],
            Holder::FarEnd(id) => (id, self.ids.far_end_user_id),
            Holder::Room(id) => (id, self.ids.room_user_id),
        };
        vec![floor_request_information(
            id,
            self.ids.floor_id,
            status,
            user,
        )]
    }

    /// FloorStatus's attributes: the floor and the request that holds it, if any.
    fn floor_status(&self) -> Vec<Attribute> {
        let mut attributes = vec![Attribute::FloorId(self.ids.floor_id)];
        attributes.extend(self.holder_information(RequestStatus::Granted));
        attributes
    }

    /// Tells a subscribed far end who holds the floor now.
    async fn floor_changed(&mut self) -> Result<(), SessionError> {
        if !self.subscribed {
            return Ok(());
        }
        let status = self.floor_status();
        self.notify(Primitive::FloorStatus, status).await
    }

    /// Sends a notification to the far end. One that does not fit because too many earlier
    /// ones wait for acknowledgements is dropped with a warning: a far end that acknowledges
    /// nothing must not end the session when the room presents.
    async fn notify(
        &mut self,
        primitive: Primitive,
        attributes: Vec<Attribute>,
    ) -> Result<(), SessionError> {
        let sent = self
            .endpoint
            .notify(
                self.ids.far_end_user_id,
                primitive,
                attributes,
                Purpose::Notification,
            )
            .await;
        match sent {
            Err(SessionError::Busy { max }) => {
                tracing::warn!(%primitive, max, "BFCP notification dropped: the far end acknowledges none");
                Ok(())
            }
            other => other,
        }
    }
}

/// HelloAck's lists for this server: the primitives it sends or takes, and every attribute
/// of RFC 8855.
fn supported() -> Vec<Attribute> {
    use Primitive::*;
    let primitives = [
        FloorRequest,
        FloorRelease,
        FloorRequestQuery,
        FloorRequestStatus,
        UserQuery,
        UserStatus,
        FloorQuery,
        FloorStatus,
        Hello,
        HelloAck,
        Error,
        FloorRequestStatusAck,
        FloorStatusAck,
        Goodbye,
        GoodbyeAck,
    ];
    vec![
        Attribute::SupportedPrimitives(primitives.iter().map(|p| *p as u8).collect()),
        Attribute::SupportedAttributes((1..=LAST_KNOWN_KIND).collect()),
    ]
}
