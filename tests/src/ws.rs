//! A client for roomd's events WebSocket (`GET /api/v1/events`) over TLS that trusts only the
//! device certificate.

use std::io::ErrorKind;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::http::HeaderValue;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Connector, Message, WebSocket};

use crate::HarnessError;
use crate::http::Endpoint;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Reads wake up this often so that waits can honour their own deadline.
const READ_POLL: Duration = Duration::from_millis(50);

pub struct EventSocket {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
}

fn ws_error(message: impl std::fmt::Display) -> HarnessError {
    HarnessError::WebSocket {
        message: message.to_string(),
    }
}

impl EventSocket {
    /// Opens the events socket with extra request headers (credentials, `Origin`). A refusal
    /// by HTTP status comes back as [`HarnessError::WebSocketRefused`].
    pub fn connect(
        endpoint: &Endpoint,
        headers: &[(&str, &str)],
    ) -> Result<EventSocket, HarnessError> {
        let url = format!("wss://{}:{}/api/v1/events", endpoint.address, endpoint.port);
        let mut request = url.into_client_request().map_err(ws_error)?;
        for (name, value) in headers {
            let name: tungstenite::http::HeaderName = name.parse().map_err(ws_error)?;
            let value = HeaderValue::from_str(value).map_err(ws_error)?;
            request.headers_mut().append(name, value);
        }
        let tcp = TcpStream::connect((endpoint.address, endpoint.port))
            .map_err(|e| ws_error(format!("connect: {e}")))?;
        tcp.set_read_timeout(Some(HANDSHAKE_TIMEOUT))
            .map_err(|e| ws_error(format!("socket timeout: {e}")))?;
        let connector = Connector::Rustls(endpoint.tls.clone());
        let (socket, _response) =
            match tungstenite::client_tls_with_config(request, tcp, None, Some(connector)) {
                Ok(done) => done,
                Err(HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                    let body = response
                        .body()
                        .as_ref()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default();
                    return Err(HarnessError::WebSocketRefused {
                        status: response.status().as_u16(),
                        body,
                    });
                }
                Err(e) => return Err(ws_error(format!("handshake: {e}"))),
            };
        if let MaybeTlsStream::Rustls(stream) = socket.get_ref() {
            stream
                .sock
                .set_read_timeout(Some(READ_POLL))
                .map_err(|e| ws_error(format!("socket timeout: {e}")))?;
        }
        Ok(EventSocket { socket })
    }

    pub fn send_text(&mut self, text: &str) -> Result<(), HarnessError> {
        self.socket
            .send(Message::text(text))
            .map_err(|e| ws_error(format!("send: {e}")))
    }

    pub fn send_json(&mut self, value: &Value) -> Result<(), HarnessError> {
        self.send_text(&value.to_string())
    }

    /// The next JSON text message, or `None` if nothing came within `timeout`.
    pub fn next_json(&mut self, timeout: Duration) -> Result<Option<Value>, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    return serde_json::from_str(text.as_str())
                        .map(Some)
                        .map_err(|e| ws_error(format!("a message is not JSON ({e}): {text}")));
                }
                Ok(Message::Close(frame)) => {
                    return Err(ws_error(format!("roomd closed the socket: {frame:?}")));
                }
                // Pings are answered by tungstenite; binary frames are not part of the protocol.
                Ok(Message::Binary(bytes)) => {
                    return Err(ws_error(format!("unexpected binary message: {bytes:?}")));
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(ws_error(format!("read: {e}"))),
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    /// Reads messages until one satisfies `wanted`; returns it and everything read before it.
    /// Fails with a list of what did arrive if the deadline passes first.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> Result<(Value, Vec<Value>), HarnessError> {
        let deadline = Instant::now() + timeout;
        let mut skipped = Vec::new();
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.next_json(remaining)? {
                Some(message) if wanted(&message) => return Ok((message, skipped)),
                Some(message) => skipped.push(message),
                None => {
                    return Err(HarnessError::Timeout {
                        what: format!("{what}; received instead: {skipped:?}"),
                        timeout,
                    });
                }
            }
        }
    }

    pub fn close(mut self) -> Result<(), HarnessError> {
        self.socket
            .close(None)
            .map_err(|e| ws_error(format!("close: {e}")))
    }
}
