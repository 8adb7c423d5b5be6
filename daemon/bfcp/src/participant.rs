//! The floor participant (RFC 8855 §9, §10 and Hello/Goodbye of §12): the room asks the far
//! end's floor control server for the content floor, gives it back, and follows who holds it.
//!
//! On start it says Hello, and once answered asks FloorQuery for its floor so that the server
//! tells it (FloorStatus) whenever someone else takes or leaves the floor. The server's own
//! FloorRequestStatus and FloorStatus are acknowledged over UDP and acted on once, however
//! often they are retransmitted.

use tokio::sync::{mpsc, oneshot};

use crate::attribute::{Attribute, ErrorCode, LAST_KNOWN_KIND, RequestStatus};
use crate::error::SessionError;
use crate::event::{CloseReason, Events, FloorEvent, close_reason};
use crate::floor::FloorRequestInfo;
use crate::message::{Message, Primitive};
use crate::transaction::{Endpoint, Happening, Timers};
use crate::transport::Transport;

/// The IDs a participant uses, from the far end's SDP (RFC 8856: `a=confid`, `a=userid`,
/// `a=floorid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloorIds {
    /// The conference ID.
    pub conference_id: u32,
    /// Our user ID.
    pub user_id: u16,
    /// The floor of the content stream.
    pub floor_id: u16,
}

/// The room's handle on a floor participant session. Clones share the session; it ends when
/// [`Participant::close`] is called or the last clone is dropped (saying Goodbye).
#[derive(Debug, Clone)]
pub struct Participant {
    commands: mpsc::Sender<Command>,
}

#[derive(Debug)]
enum Command {
    Request(oneshot::Sender<Result<RequestStatus, SessionError>>),
    Release(oneshot::Sender<Result<(), SessionError>>),
    Close(oneshot::Sender<Result<(), SessionError>>),
}

impl Participant {
    /// Starts a session over `transport` on the current Tokio runtime (must be called inside
    /// one): says Hello and subscribes to the floor's status. Returns the handle and the
    /// session's events; the last event is always [`FloorEvent::Closed`].
    pub fn start(
        transport: Transport,
        ids: FloorIds,
        timers: Timers,
    ) -> (Participant, mpsc::Receiver<FloorEvent>) {
        let (events, receiver) = Events::new();
        let (commands, command_receiver) = mpsc::channel(8);
        let session = Session {
            endpoint: Endpoint::new(transport, timers, ids.conference_id),
            ids,
            events,
            commands: command_receiver,
            ours: None,
            finished: None,
            requesting: false,
            busy: false,
        };
        tokio::spawn(session.run());
        (Participant { commands }, receiver)
    }

    /// Asks for the floor. Returns the status the server answered with at once: often
    /// Pending, with Granted following as a [`FloorEvent`]; or Granted straight away. When
    /// the room already holds or waits for the floor, its current status, without asking
    /// again. A refusal by Error is [`SessionError::Refused`]; one by status is
    /// `Ok(RequestStatus::Denied)`.
    pub async fn request_floor(&self) -> Result<RequestStatus, SessionError> {
        self.ask(Command::Request).await
    }

    /// Gives the floor back, or withdraws a request that waits. Nothing to do (Ok) when the
    /// room neither holds nor waits for the floor.
    pub async fn release_floor(&self) -> Result<(), SessionError> {
        self.ask(Command::Release).await
    }

    /// Says Goodbye, waits for its answer (bounded by [`Timers::answer_timeout`]) and ends
    /// the session.
    pub async fn close(&self) -> Result<(), SessionError> {
        self.ask(Command::Close).await
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, SessionError>>) -> Command,
    ) -> Result<T, SessionError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| SessionError::Ended)?;
        answer.await.map_err(|_| SessionError::Ended)?
    }
}

/// What a request of ours is for.
enum Purpose {
    Hello,
    FloorQuery,
    Request(oneshot::Sender<Result<RequestStatus, SessionError>>),
    Release(oneshot::Sender<Result<(), SessionError>>),
    /// Whoever waits for the answer, if anyone.
    Goodbye(Option<oneshot::Sender<Result<(), SessionError>>>),
}

/// The room's floor request as the server last told it.
#[derive(Debug, Clone, Copy)]
struct Ours {
    floor_request_id: u16,
    status: RequestStatus,
}

struct Session {
    endpoint: Endpoint<Purpose>,
    ids: FloorIds,
    events: Events,
    commands: mpsc::Receiver<Command>,
    ours: Option<Ours>,
    /// The last request of ours that ended: late news of it changes nothing.
    finished: Option<u16>,
    /// A FloorRequest of ours waits for its answer: a status notification for a request we
    /// do not know yet is about it (the answer may come after, or be lost).
    requesting: bool,
    /// A command's transaction is in flight: commands wait, one at a time.
    busy: bool,
}

enum Step {
    Happening(Happening<Purpose>),
    Command(Option<Command>),
}

impl Session {
    async fn run(mut self) {
        let reason = close_reason(self.serve().await, "participant");
        self.events.send(FloorEvent::Closed(reason));
        // Dropping the session drops the requests in flight: whoever waits on one gets
        // SessionError::Ended.
    }

    async fn serve(&mut self) -> Result<CloseReason, SessionError> {
        self.endpoint
            .request(self.ids.user_id, Primitive::Hello, vec![], Purpose::Hello)
            .await?;
        loop {
            let step = tokio::select! {
                happening = self.endpoint.next() => Step::Happening(happening?),
                command = self.commands.recv(), if !self.busy => Step::Command(command),
            };
            let ended = match step {
                Step::Happening(Happening::Answered(purpose, message)) => {
                    self.on_answer(purpose, message).await?
                }
                Step::Happening(Happening::Unanswered(purpose, error)) => {
                    self.on_unanswered(purpose, error)
                }
                Step::Happening(Happening::Incoming(message)) => self.on_incoming(message).await?,
                Step::Command(Some(command)) => self.on_command(command).await?,
                Step::Command(None) => {
                    // Every handle is gone: tell the far end, without waiting for its answer.
                    self.endpoint
                        .request(
                            self.ids.user_id,
                            Primitive::Goodbye,
                            vec![],
                            Purpose::Goodbye(None),
                        )
                        .await?;
                    Some(CloseReason::Local)
                }
            };
            if let Some(reason) = ended {
                return Ok(reason);
            }
        }
    }

    async fn on_command(&mut self, command: Command) -> Result<Option<CloseReason>, SessionError> {
        let user_id = self.ids.user_id;
        match command {
            Command::Request(reply) => {
                if let Some(ours) = self.ours {
                    let _ = reply.send(Ok(ours.status));
                    return Ok(None);
                }
                self.busy = true;
                self.requesting = true;
                let floor = vec![Attribute::FloorId(self.ids.floor_id)];
                self.endpoint
                    .request(
                        user_id,
                        Primitive::FloorRequest,
                        floor,
                        Purpose::Request(reply),
                    )
                    .await?;
            }
            Command::Release(reply) => {
                let Some(ours) = self.ours else {
                    let _ = reply.send(Ok(()));
                    return Ok(None);
                };
                self.busy = true;
                let id = vec![Attribute::FloorRequestId(ours.floor_request_id)];
                self.endpoint
                    .request(
                        user_id,
                        Primitive::FloorRelease,
                        id,
                        Purpose::Release(reply),
                    )
                    .await?;
            }
            Command::Close(reply) => {
                self.busy = true;
                self.endpoint
                    .request(
                        user_id,
                        Primitive::Goodbye,
                        vec![],
                        Purpose::Goodbye(Some(reply)),
                    )
                    .await?;
            }
        }
        Ok(None)
    }

    async fn on_answer(
        &mut self,
        purpose: Purpose,
        answer: Message,
    ) -> Result<Option<CloseReason>, SessionError> {
        let primitive = answer.header.primitive;
        match purpose {
            Purpose::Hello => {
                if primitive == Primitive::Error {
                    tracing::warn!(error = ?answer.error(), "the floor control server answered Hello with an Error");
                }
                self.events.send(FloorEvent::Connected);
                let floor = vec![Attribute::FloorId(self.ids.floor_id)];
                self.endpoint
                    .request(
                        self.ids.user_id,
                        Primitive::FloorQuery,
                        floor,
                        Purpose::FloorQuery,
                    )
                    .await?;
            }
            Purpose::FloorQuery => {
                if primitive == Primitive::FloorStatus {
                    self.on_floor_status(&answer);
                } else {
                    tracing::debug!(error = ?answer.error(), "the floor control server does not tell the floor's status");
                }
            }
            Purpose::Request(reply) => {
                self.busy = false;
                self.requesting = false;
                let result = match primitive {
                    Primitive::FloorRequestStatus => FloorRequestInfo::all_in(&answer)
                        .first()
                        .and_then(|info| self.update(info))
                        .ok_or(SessionError::UnexpectedAnswer {
                            request: Primitive::FloorRequest,
                            answer: primitive,
                        }),
                    _ => Err(refusal(Primitive::FloorRequest, &answer)),
                };
                let _ = reply.send(result);
            }
            Purpose::Release(reply) => {
                self.busy = false;
                let result = match primitive {
                    Primitive::FloorRequestStatus => {
                        let our_id = self.ours.map(|o| o.floor_request_id);
                        for info in FloorRequestInfo::all_in(&answer) {
                            if Some(info.floor_request_id) == our_id {
                                self.update(&info);
                            }
                        }
                        // Released, or whatever it said: the request is over for the room.
                        self.end_ours(FloorEvent::Released);
                        Ok(())
                    }
                    _ => {
                        let refused = refusal(Primitive::FloorRelease, &answer);
                        if let SessionError::Refused {
                            code: ErrorCode::FLOOR_REQUEST_ID_DOES_NOT_EXIST,
                            ..
                        } = refused
                        {
                            // The server has forgotten it: nothing is held any more.
                            self.end_ours(FloorEvent::Released);
                            Ok(())
                        } else {
                            Err(refused)
                        }
                    }
                };
                let _ = reply.send(result);
            }
            Purpose::Goodbye(reply) => {
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(()));
                }
                return Ok(Some(CloseReason::Local));
            }
        }
        Ok(None)
    }

    fn on_unanswered(&mut self, purpose: Purpose, error: SessionError) -> Option<CloseReason> {
        match purpose {
            Purpose::Hello => return Some(CloseReason::NoAnswer),
            Purpose::FloorQuery => tracing::debug!(%error, "FloorQuery unanswered"),
            Purpose::Request(reply) => {
                self.busy = false;
                self.requesting = false;
                let _ = reply.send(Err(error));
            }
            Purpose::Release(reply) => {
                self.busy = false;
                let _ = reply.send(Err(error));
            }
            Purpose::Goodbye(reply) => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(error));
                }
                return Some(CloseReason::Local);
            }
        }
        None
    }

    /// A request or notification the server sent of its own.
    async fn on_incoming(&mut self, message: Message) -> Result<Option<CloseReason>, SessionError> {
        let header = message.header;
        if header.conference_id != self.ids.conference_id {
            let info = format!("this is conference {}", self.ids.conference_id);
            self.endpoint
                .answer_error(&header, ErrorCode::CONFERENCE_DOES_NOT_EXIST, vec![], &info)
                .await?;
            return Ok(None);
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
        match header.primitive {
            Primitive::FloorRequestStatus => {
                self.endpoint.acknowledge(&header).await?;
                for info in FloorRequestInfo::all_in(&message) {
                    let about_ours = match self.ours {
                        Some(ours) => ours.floor_request_id == info.floor_request_id,
                        None => {
                            self.requesting
                                && self.finished != Some(info.floor_request_id)
                                && (info.floor_ids.is_empty()
                                    || info.floor_ids.contains(&self.ids.floor_id))
                        }
                    };
                    if about_ours {
                        self.update(&info);
                    }
                }
            }
            Primitive::FloorStatus => {
                self.endpoint.acknowledge(&header).await?;
                self.on_floor_status(&message);
            }
            Primitive::Hello => {
                self.endpoint
                    .answer(&header, Primitive::HelloAck, supported())
                    .await?;
            }
            Primitive::Goodbye => {
                self.endpoint
                    .answer(&header, Primitive::GoodbyeAck, vec![])
                    .await?;
                return Ok(Some(CloseReason::Goodbye));
            }
            other => {
                let info = format!("a floor participant does not take {other}");
                self.endpoint
                    .answer_error(&header, ErrorCode::UNKNOWN_PRIMITIVE, vec![], &info)
                    .await?;
            }
        }
        Ok(None)
    }

    /// Takes what the server says of the room's request; returns its status now.
    fn update(&mut self, info: &FloorRequestInfo) -> Option<RequestStatus> {
        let status = info.status?;
        let id = info.floor_request_id;
        if self.finished == Some(id) {
            return None;
        }
        if let Some(ours) = self.ours
            && ours.floor_request_id == id
            && progress(status) <= progress(ours.status)
        {
            // The same news again, or older news that came late (the answer to our
            // FloorRequest after the notification that granted it).
            return Some(ours.status);
        }
        let info_text = info.status_info.clone();
        let event = match status {
            RequestStatus::Pending | RequestStatus::Accepted => FloorEvent::Pending {
                queue_position: info.queue_position,
            },
            RequestStatus::Granted => FloorEvent::Granted,
            RequestStatus::Denied => FloorEvent::Denied {
                status_info: info_text,
            },
            RequestStatus::Cancelled | RequestStatus::Released => FloorEvent::Released,
            RequestStatus::Revoked => FloorEvent::Revoked {
                status_info: info_text,
            },
        };
        if status.is_final() {
            self.ours = None;
            self.finished = Some(id);
        } else {
            self.ours = Some(Ours {
                floor_request_id: id,
                status,
            });
        }
        self.events.send(event);
        Some(status)
    }

    /// The room's request is over (its release was answered) if it was not already.
    fn end_ours(&mut self, event: FloorEvent) {
        if let Some(ours) = self.ours.take() {
            self.finished = Some(ours.floor_request_id);
            self.events.send(event);
        }
    }

    /// Who holds the floor, as a FloorStatus says.
    fn on_floor_status(&mut self, message: &Message) {
        let floors = message.floor_ids();
        if !floors.is_empty() && !floors.contains(&self.ids.floor_id) {
            return;
        }
        let infos = FloorRequestInfo::all_in(message);
        let our_id = self.ours.map(|o| o.floor_request_id);
        for info in infos.iter().filter(|i| Some(i.floor_request_id) == our_id) {
            self.update(info);
        }
        let our_id = self.ours.map(|o| o.floor_request_id);
        let someone_else = infos.iter().find(|i| {
            i.status == Some(RequestStatus::Granted)
                && Some(i.floor_request_id) != our_id
                && i.user_id != Some(self.ids.user_id)
        });
        match someone_else {
            Some(holder) => self.events.send(FloorEvent::HeldBy {
                user_id: holder.user_id,
            }),
            None => {
                let we_hold = self
                    .ours
                    .is_some_and(|o| o.status == RequestStatus::Granted);
                if !we_hold {
                    self.events.send(FloorEvent::Free);
                }
            }
        }
    }
}

/// How far a request has come: news never takes it back.
fn progress(status: RequestStatus) -> u8 {
    match status {
        RequestStatus::Pending => 0,
        RequestStatus::Accepted => 1,
        RequestStatus::Granted => 2,
        _ => 3,
    }
}

/// The error an answer that is not the expected one stands for.
fn refusal(request: Primitive, answer: &Message) -> SessionError {
    match answer.error() {
        Some((code, info)) => SessionError::Refused {
            primitive: request,
            code,
            info,
        },
        None => SessionError::UnexpectedAnswer {
            request,
            answer: answer.header.primitive,
        },
    }
}

/// HelloAck's lists for a floor participant: the primitives it sends or takes, and every
/// attribute of RFC 8855.
fn supported() -> Vec<Attribute> {
    use Primitive::*;
    let primitives = [
        FloorRequest,
        FloorRelease,
        FloorRequestStatus,
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
