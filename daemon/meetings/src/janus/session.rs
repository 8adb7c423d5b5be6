//! A Janus session over the HTTP transport: requests with transactions, and one thread that
//! long-polls `GET /janus/<session>` and routes what arrives.
//!
//! Plugin requests are asynchronous in Janus: the POST only gets an `ack`, the answer comes later
//! on the long poll with the same `transaction`. So a request registers its transaction *before*
//! posting (the answer can overtake the ack), and the poller hands each message either to the
//! request waiting for that transaction or, if none waits, to the session's event stream. Events
//! of every handle share the one stream; nothing is dropped for belonging to another handle.
//! The long poll also keeps the session alive (Janus' session timeout is 60 s by default).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use url::Url;

use super::error::JanusError;
use super::event::{JanusEvent, parse_event};
use super::message::{Envelope, parse_body, parse_poll_body, required_u64};
use crate::https::{Body, HttpsClient, HttpsError, Method, parse_url, redact};
use roomd_base::sync::lock;

/// How long an asynchronous plugin answer may take to arrive on the long poll.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);
/// Janus holds a long poll for 30 s before answering `keepalive`; allow more than that.
const POLL_TIMEOUT: Duration = Duration::from_secs(45);
/// Events fetched per long poll.
const POLL_BATCH: u32 = 10;
/// Consecutive failed long polls retried before the stream ends, and the pause before each
/// (growing: 2 s, 4 s, 6 s).
const POLL_RETRIES: u32 = 3;
const POLL_RETRY_PAUSE: Duration = Duration::from_secs(2);

/// The stream of a session's events. `Err` items are messages Janus sent that could not be
/// read (the stream goes on); the channel closes when the stream has ended, after an
/// `Err(StreamEnded)` or [`JanusEvent::SessionTimeout`] saying why.
pub type JanusEvents = UnboundedReceiver<Result<JanusEvent, JanusError>>;

type Waiter = mpsc::Sender<Envelope>;

/// One ICE candidate, as `webrtcbin`'s `on-ice-candidate` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// `sdpMid`: the media section's `mid`.
    pub mid: String,
    /// `sdpMLineIndex`: the media section's position in the SDP, from 0.
    pub mline_index: u32,
    /// The `candidate:...` attribute value.
    pub candidate: String,
}

struct Shared {
    http: HttpsClient,
    /// `.../janus/<session id>`
    session_url: Url,
    pending: Mutex<HashMap<String, Waiter>>,
    /// Why the event stream ended, once it has.
    ended: Mutex<Option<String>>,
    stop: AtomicBool,
}

/// One Janus session. Dropping it (the last `Arc`, handles hold one) stops the event stream (within one long poll) but does not
/// destroy the session on the server: call [`JanusSession::destroy`] for that.
pub struct JanusSession {
    shared: Arc<Shared>,
    id: u64,
}

impl std::fmt::Debug for JanusSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JanusSession")
            .field("id", &self.id)
            .finish()
    }
}

impl JanusSession {
    /// Creates a session at `server` (the Janus HTTP API, e.g. `https://janus.example:8089/janus`)
    /// and starts its event stream. Handles share the session, hence the `Arc`.
    pub fn create(
        http: &HttpsClient,
        server: &str,
    ) -> Result<(Arc<JanusSession>, JanusEvents), JanusError> {
        let base = parse_url(server)?;
        let reply = post(http, &base, json!({"janus": "create"}))?;
        let id = success_id(&base, &reply)?;
        let session_url = child(&base, id);
        let shared = Arc::new(Shared {
            http: http.clone(),
            session_url,
            pending: Mutex::new(HashMap::new()),
            ended: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let (events_tx, events_rx) = unbounded_channel();
        let poller = shared.clone();
        std::thread::Builder::new()
            .name(format!("janus-poll-{id}"))
            .spawn(move || poll_loop(&poller, &events_tx))
            .map_err(|e| JanusError::StreamEnded {
                reason: format!("cannot start the polling thread: {e}"),
            })?;
        Ok((Arc::new(JanusSession { shared, id }), events_rx))
    }

    /// The server's id for this session.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Attaches a handle to `plugin`; returns the handle id.
    pub(super) fn attach(&self, plugin: &str) -> Result<u64, JanusError> {
        let url = &self.shared.session_url;
        let reply = post(
            &self.shared.http,
            url,
            json!({"janus": "attach", "plugin": plugin}),
        )?;
        success_id(url, &reply)
    }

    /// Detaches handle `handle`.
    pub(super) fn detach(&self, handle: u64) -> Result<(), JanusError> {
        let url = child(&self.shared.session_url, handle);
        let reply = post(&self.shared.http, &url, json!({"janus": "detach"}))?;
        expect_kind(&url, &reply, "success")
    }

    /// Sends one of our ICE candidates for `handle` (`None`: gathering is complete). Offers and
    /// answers that already carry every candidate need none of this.
    pub(super) fn trickle(
        &self,
        handle: u64,
        candidate: Option<&Candidate>,
    ) -> Result<(), JanusError> {
        let url = child(&self.shared.session_url, handle);
        let candidate = match candidate {
            Some(c) => {
                json!({"sdpMid": c.mid, "sdpMLineIndex": c.mline_index, "candidate": c.candidate})
            }
            None => json!({"completed": true}),
        };
        let reply = post(
            &self.shared.http,
            &url,
            json!({"janus": "trickle", "candidate": candidate}),
        )?;
        expect_kind(&url, &reply, "ack")
    }

    /// Tells Janus we are still here (the event stream does this too while it runs).
    pub fn keepalive(&self) -> Result<(), JanusError> {
        let url = &self.shared.session_url;
        let reply = post(&self.shared.http, url, json!({"janus": "keepalive"}))?;
        expect_kind(url, &reply, "ack")
    }

    /// Destroys the session on the server and stops the event stream.
    pub fn destroy(&self) -> Result<(), JanusError> {
        self.shared.stop.store(true, Ordering::SeqCst);
        let url = &self.shared.session_url;
        let reply = post(&self.shared.http, url, json!({"janus": "destroy"}))?;
        expect_kind(url, &reply, "success")
    }

    /// Sends a plugin `message` on `handle` (with an optional JSEP) and returns the plugin's
    /// answer: at once for synchronous requests, or the event carrying our transaction.
    pub(super) fn message(
        &self,
        handle: u64,
        request: &str,
        body: Value,
        jsep: Option<(&str, &str)>,
    ) -> Result<Envelope, JanusError> {
        let url = child(&self.shared.session_url, handle);
        let transaction = roomd_base::random::token_hex(12);
        let mut message = json!({"janus": "message", "body": body, "transaction": transaction});
        if let Some((kind, sdp)) = jsep {
            message["jsep"] = json!({"type": kind, "sdp": sdp});
        }
        let (tx, rx) = mpsc::channel();
        self.register(&transaction, tx)?;
        let answer = self.send_and_wait(&url, request, &transaction, message, &rx);
        lock(&self.shared.pending).remove(&transaction);
        answer
    }

    fn register(&self, transaction: &str, waiter: Waiter) -> Result<(), JanusError> {
        // Holding `ended` while inserting: either the poller's final clear of `pending` sees
        // this waiter, or we see that the stream has ended. Never a waiter nobody will answer.
        let ended = lock(&self.shared.ended);
        if let Some(reason) = ended.clone() {
            return Err(JanusError::StreamEnded { reason });
        }
        lock(&self.shared.pending).insert(transaction.to_owned(), waiter);
        Ok(())
    }

    fn send_and_wait(
        &self,
        url: &Url,
        request: &str,
        transaction: &str,
        message: Value,
        rx: &mpsc::Receiver<Envelope>,
    ) -> Result<Envelope, JanusError> {
        let reply = post_with_transaction(&self.shared.http, url, message, transaction)?;
        match reply.kind.as_str() {
            // Synchronous plugin requests answer right away.
            "success" => return Ok(reply),
            "ack" => {}
            _ => {
                return Err(JanusError::Unexpected {
                    url: redact(url),
                    expected: "ack",
                });
            }
        }
        match rx.recv_timeout(ANSWER_TIMEOUT) {
            Ok(envelope) => check_error(&envelope).map(|()| envelope),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(JanusError::NoAnswer {
                request: request.to_owned(),
                seconds: ANSWER_TIMEOUT.as_secs(),
            }),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(JanusError::StreamEnded {
                reason: lock(&self.shared.ended)
                    .clone()
                    .unwrap_or_else(|| "the polling thread stopped".to_owned()),
            }),
        }
    }
}

impl Drop for JanusSession {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

/// The event stream: long polls until stopped or the stream breaks.
fn poll_loop(shared: &Shared, events: &UnboundedSender<Result<JanusEvent, JanusError>>) {
    let mut url = shared.session_url.clone();
    url.set_query(Some(&format!("maxev={POLL_BATCH}")));
    let shown = redact(&shared.session_url);
    let mut failures = 0;
    let reason = loop {
        if shared.stop.load(Ordering::SeqCst) {
            break "the session was closed".to_owned();
        }
        let reply = match shared
            .http
            .request(Method::Get, &url, &[], None, Some(POLL_TIMEOUT))
        {
            Ok(reply) => reply,
            // A network blip should not end a meeting: the session outlives a few seconds
            // without polls (Janus' timeout is 60 s), so retry a connection or timeout failure.
            Err(e @ (HttpsError::Connect { .. } | HttpsError::Timeout { .. }))
                if failures < POLL_RETRIES =>
            {
                failures += 1;
                tracing::warn!("Janus long poll failed ({e}); retry {failures} of {POLL_RETRIES}");
                std::thread::sleep(POLL_RETRY_PAUSE * failures);
                continue;
            }
            Err(e) => break e.to_string(),
        };
        failures = 0;
        if shared.stop.load(Ordering::SeqCst) {
            break "the session was closed".to_owned();
        }
        if reply.status != 200 {
            break reply.status_error().to_string();
        }
        let messages = match parse_poll_body(&shown, &reply.body) {
            Ok(messages) => messages,
            Err(e) => break e.to_string(),
        };
        let mut timed_out = None;
        for message in messages {
            let envelope = match message {
                Ok(envelope) => envelope,
                Err(e) => {
                    let _ = events.send(Err(e));
                    continue;
                }
            };
            if let Some(reason) = route(shared, envelope, events) {
                timed_out = Some(reason);
            }
        }
        if let Some(reason) = timed_out {
            break reason;
        }
    };
    // Order matters: mark the end first, so a request registering later fails at once, then drop
    // the waiters, so requests in flight fail now instead of after their timeout.
    *lock(&shared.ended) = Some(reason.clone());
    lock(&shared.pending).clear();
    if !shared.stop.load(Ordering::SeqCst) {
        let _ = events.send(Err(JanusError::StreamEnded { reason }));
    }
}

/// Hands one message to its waiter or the event stream; `Some(reason)` ends the stream.
fn route(
    shared: &Shared,
    envelope: Envelope,
    events: &UnboundedSender<Result<JanusEvent, JanusError>>,
) -> Option<String> {
    if envelope.kind == "keepalive" {
        return None;
    }
    if let Some(transaction) = &envelope.transaction {
        let waiter = lock(&shared.pending).remove(transaction);
        if let Some(waiter) = waiter {
            let _ = waiter.send(envelope);
            return None;
        }
    }
    if envelope.kind == "error"
        && envelope
            .error
            .as_ref()
            .is_some_and(|(code, _)| *code == 458)
    {
        let _ = events.send(Err(JanusError::SessionNotFound));
        return Some("the session is gone (Janus error 458)".to_owned());
    }
    let event = parse_event(&envelope).map_err(|problem| JanusError::Malformed {
        url: redact(&shared.session_url),
        problem,
    });
    let timed_out = matches!(event, Ok(JanusEvent::SessionTimeout));
    let _ = events.send(event);
    timed_out.then(|| "the session timed out on the server".to_owned())
}

/// Posts a core request (a fresh transaction) and reads the reply envelope.
fn post(http: &HttpsClient, url: &Url, mut message: Value) -> Result<Envelope, JanusError> {
    let transaction = roomd_base::random::token_hex(12);
    message["transaction"] = Value::String(transaction.clone());
    post_with_transaction(http, url, message, &transaction)
}

/// Posts `message` (which carries `transaction`) and checks the reply's envelope and
/// transaction; Janus errors become typed errors.
fn post_with_transaction(
    http: &HttpsClient,
    url: &Url,
    message: Value,
    transaction: &str,
) -> Result<Envelope, JanusError> {
    let body = message.to_string();
    let reply = http.request(
        Method::Post,
        url,
        &[("accept", "application/json")],
        Some(Body {
            content_type: "application/json",
            data: body.as_bytes(),
        }),
        None,
    )?;
    let shown = redact(url);
    // Janus answers errors with 200 and an error message; other statuses come from proxies or
    // something that is not Janus.
    if reply.status != 200 {
        let envelope = parse_body(&shown, &reply.body).ok();
        if let Some(envelope) = envelope.filter(|e| e.error.is_some()) {
            check_error(&envelope)?;
        }
        return Err(JanusError::Status {
            url: shown,
            status: reply.status,
        });
    }
    let envelope = parse_body(&shown, &reply.body)?;
    check_error(&envelope)?;
    match envelope.transaction.as_deref() {
        Some(t) if t == transaction => Ok(envelope),
        _ => Err(JanusError::TransactionMismatch { url: shown }),
    }
}

/// Janus core errors (`janus: error`) and VideoRoom errors (`error_code` in plugin data).
fn check_error(envelope: &Envelope) -> Result<(), JanusError> {
    if let Some((code, _reason)) = &envelope.error {
        return Err(match code {
            458 => JanusError::SessionNotFound,
            _ => JanusError::Janus { code: *code },
        });
    }
    if envelope.kind == "error" {
        return Err(JanusError::Janus { code: 0 });
    }
    Ok(())
}

/// The `data.id` of a `success` reply (new session or handle).
fn success_id(url: &Url, envelope: &Envelope) -> Result<u64, JanusError> {
    expect_kind(url, envelope, "success")?;
    let data = envelope
        .data
        .as_ref()
        .ok_or_else(|| JanusError::Malformed {
            url: redact(url),
            problem: "the \"data\" of a success answer is missing".to_owned(),
        })?;
    required_u64(data, "id").map_err(|problem| JanusError::Malformed {
        url: redact(url),
        problem: format!("data: {problem}"),
    })
}

fn expect_kind(url: &Url, envelope: &Envelope, expected: &'static str) -> Result<(), JanusError> {
    if envelope.kind == expected {
        Ok(())
    } else {
        Err(JanusError::Unexpected {
            url: redact(url),
            expected,
        })
    }
}

/// `base` with one more path segment.
fn child(base: &Url, id: u64) -> Url {
    let mut url = base.clone();
    url.set_query(None);
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().push(&id.to_string());
    }
    url
}
