//! Requests to roomd's API with full control over method, path, headers and body bytes, and
//! answers as plain data (status, headers, body) for tests to assert on.
//!
//! Two transports: ureq (connection pooling, a real client's behaviour) for ordinary requests,
//! and a hand-written HTTP/1.1 exchange over rustls when the request must come from another
//! loopback source address or must be bytes no client library would send.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use serde_json::Value;

use crate::HarnessError;
use crate::session::Session;

/// Largest response body a test reads (a full audit log page fits easily).
const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;
const RAW_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how to reach one running roomd.
#[derive(Clone)]
pub struct Endpoint {
    pub(crate) agent: ureq::Agent,
    pub(crate) tls: Arc<rustls::ClientConfig>,
    /// 127.0.0.1, or the test network address a roomd in a namespace listens on.
    pub(crate) address: Ipv4Addr,
    pub(crate) port: u16,
}

impl Endpoint {
    pub fn base_url(&self) -> String {
        format!("https://{}:{}", self.address, self.port)
    }
}

/// An answer from roomd.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ApiResponse {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (e.g. several `Set-Cookie`).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Result<Value, HarnessError> {
        serde_json::from_slice(&self.body).map_err(|e| HarnessError::UnexpectedBody {
            what: format!("HTTP {} answer", self.status),
            message: format!("not JSON ({e}): {}", self.text()),
        })
    }

    /// The `error` code of an error body, if the body is one.
    pub fn error_code(&self) -> Option<String> {
        self.json().ok()?.get("error")?.as_str().map(str::to_owned)
    }

    /// The `message` of an error body, if the body is one.
    pub fn error_message(&self) -> Option<String> {
        self.json()
            .ok()?
            .get("message")?
            .as_str()
            .map(str::to_owned)
    }

    /// Fails unless the status is `expected`; `what` says which step of a test this was.
    pub fn expect_status(self, expected: u16, what: &str) -> Result<ApiResponse, HarnessError> {
        if self.status == expected {
            Ok(self)
        } else {
            Err(HarnessError::UnexpectedStatus {
                what: what.to_owned(),
                expected,
                status: self.status,
                body: self.text(),
            })
        }
    }
}

enum RequestBody {
    None,
    /// Sent with `Content-Length`.
    Sized(Vec<u8>),
    /// Sent with `Transfer-Encoding: chunked`, so the server cannot judge the size up front.
    Chunked(Vec<u8>),
}

/// Runs `request` on `agent`, allowed `timeout` for the whole exchange instead of the agent's own.
fn run_within<B: ureq::AsSendBody>(
    agent: &ureq::Agent,
    request: ureq::http::Request<B>,
    timeout: Option<Duration>,
) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    match timeout {
        Some(limit) => agent.run(
            agent
                .configure_request(request)
                .timeout_global(Some(limit))
                .build(),
        ),
        None => agent.run(request),
    }
}

/// A request being put together; `send` performs it.
pub struct ApiRequest {
    endpoint: Endpoint,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: RequestBody,
    source: Option<Ipv4Addr>,
    /// Replaces the agent's 30 s limit for the whole exchange (large uploads to a slow guest).
    timeout: Option<Duration>,
}

impl ApiRequest {
    pub(crate) fn new(endpoint: Endpoint, method: &str, path: &str) -> ApiRequest {
        ApiRequest {
            endpoint,
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: RequestBody::None,
            source: None,
            timeout: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> ApiRequest {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn bearer(self, token: &str) -> ApiRequest {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// The session cookie only (no CSRF header): what a cross-site form post would carry.
    pub fn cookie(self, session: &Session) -> ApiRequest {
        self.header("Cookie", &session.cookie)
    }

    /// The session cookie and its CSRF token: what roomd's own web UI sends.
    pub fn session(self, session: &Session) -> ApiRequest {
        self.cookie(session)
            .header("X-CSRF-Token", &session.csrf_token)
    }

    /// A JSON body with `Content-Type: application/json`.
    pub fn json(self, body: &Value) -> ApiRequest {
        self.header("Content-Type", "application/json")
            .body(body.to_string().into_bytes())
    }

    /// Body bytes exactly as given; set `Content-Type` yourself.
    pub fn body(mut self, bytes: Vec<u8>) -> ApiRequest {
        self.body = RequestBody::Sized(bytes);
        self
    }

    /// Body bytes sent chunked (no `Content-Length`).
    pub fn body_chunked(mut self, bytes: Vec<u8>) -> ApiRequest {
        self.body = RequestBody::Chunked(bytes);
        self
    }

    /// Allows the whole exchange `limit` instead of the agent's 30 s (e.g. a firmware bundle of
    /// hundreds of MB sent to a guest under software emulation).
    pub fn timeout(mut self, limit: Duration) -> ApiRequest {
        self.timeout = Some(limit);
        self
    }

    /// Connects from this loopback address (e.g. 127.0.0.2) instead of 127.0.0.1. Linux routes
    /// all of 127.0.0.0/8 to `lo`, so roomd sees a different client address.
    pub fn from_source(mut self, source: Ipv4Addr) -> ApiRequest {
        self.source = Some(source);
        self
    }

    pub fn send(self) -> Result<ApiResponse, HarnessError> {
        match self.source {
            Some(source) => {
                let bytes = self.serialize();
                raw_exchange(&self.endpoint, &bytes, Some(source))
            }
            None => self.send_with_ureq(),
        }
    }

    fn transport_error(&self, message: impl std::fmt::Display) -> HarnessError {
        HarnessError::Transport {
            method: self.method.clone(),
            path: shortened(&self.path),
            message: message.to_string(),
        }
    }

    fn send_with_ureq(self) -> Result<ApiResponse, HarnessError> {
        let url = format!("{}{}", self.endpoint.base_url(), self.path);
        let mut builder = ureq::http::Request::builder()
            .method(self.method.as_bytes())
            .uri(&url);
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_bytes());
        }
        let (agent, timeout) = (&self.endpoint.agent, self.timeout);
        let result = match &self.body {
            RequestBody::None => builder
                .body(())
                .map(|request| run_within(agent, request, timeout)),
            RequestBody::Sized(bytes) => builder
                .body(bytes.clone())
                .map(|request| run_within(agent, request, timeout)),
            RequestBody::Chunked(bytes) => {
                let reader = std::io::Cursor::new(bytes.clone());
                builder
                    .body(ureq::SendBody::from_owned_reader(reader))
                    .map(|request| run_within(agent, request, timeout))
            }
        };
        let mut response = result
            .map_err(|e| self.transport_error(format!("cannot build the request: {e}")))?
            .map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|e| self.transport_error(format!("cannot read the body: {e}")))?;
        Ok(ApiResponse {
            status,
            headers,
            body,
        })
    }

    /// The request as HTTP/1.1 bytes, for the raw transport.
    fn serialize(&self) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\n",
            self.method, self.path, self.endpoint.address, self.endpoint.port
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let mut bytes = Vec::new();
        match &self.body {
            RequestBody::None => {
                head.push_str("\r\n");
                bytes.extend_from_slice(head.as_bytes());
            }
            RequestBody::Sized(body) => {
                head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
                bytes.extend_from_slice(head.as_bytes());
                bytes.extend_from_slice(body);
            }
            RequestBody::Chunked(body) => {
                head.push_str("Transfer-Encoding: chunked\r\n\r\n");
                bytes.extend_from_slice(head.as_bytes());
                if !body.is_empty() {
                    bytes.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
                    bytes.extend_from_slice(body);
                    bytes.extend_from_slice(b"\r\n");
                }
                bytes.extend_from_slice(b"0\r\n\r\n");
            }
        }
        bytes
    }
}

/// Sends `request` (complete HTTP/1.1 bytes, ideally with `Connection: close`) over a fresh TLS
/// connection, optionally from `source`, and parses whatever comes back.
pub fn raw_exchange(
    endpoint: &Endpoint,
    request: &[u8],
    source: Option<Ipv4Addr>,
) -> Result<ApiResponse, HarnessError> {
    let fail = |message: String| HarnessError::Transport {
        method: "raw".to_owned(),
        path: first_line(request),
        message,
    };
    let target = SocketAddrV4::new(endpoint.address, endpoint.port);
    let tcp = connect_from(target, source).map_err(|e| fail(format!("connect: {e}")))?;
    tcp.set_read_timeout(Some(RAW_TIMEOUT))
        .and_then(|()| tcp.set_write_timeout(Some(RAW_TIMEOUT)))
        .map_err(|e| fail(format!("socket timeouts: {e}")))?;
    let server = ServerName::IpAddress(endpoint.address.into());
    let connection = rustls::ClientConnection::new(endpoint.tls.clone(), server)
        .map_err(|e| fail(format!("TLS: {e}")))?;
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    // The server may answer and close before it has read everything (e.g. 413), so a failed
    // write is not yet a failure: what matters is the answer.
    let write_result = stream.write_all(request).and_then(|()| stream.flush());
    let mut received = Vec::new();
    let read_result = read_until_closed(&mut stream, &mut received);
    if received.is_empty() {
        let reason = match (write_result, read_result) {
            (Err(e), _) => format!("write failed ({e}) and no answer came"),
            (_, Err(e)) => format!("no answer: {e}"),
            _ => "the server closed the connection without an answer".to_owned(),
        };
        return Err(fail(reason));
    }
    parse_response(&received).map_err(fail)
}

/// At most 120 characters of `text`, so that errors about huge requests stay readable.
fn shortened(text: &str) -> String {
    match text.char_indices().nth(120) {
        Some((cut, _)) => format!("{}... ({} bytes)", &text[..cut], text.len()),
        None => text.to_owned(),
    }
}

fn first_line(request: &[u8]) -> String {
    let end = request
        .iter()
        .position(|b| *b == b'\r' || *b == b'\n')
        .unwrap_or(request.len())
        .min(120);
    String::from_utf8_lossy(&request[..end]).into_owned()
}

fn read_until_closed(stream: &mut impl Read, into: &mut Vec<u8>) -> std::io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => into.extend_from_slice(&buf[..n]),
            // A peer that closes without close_notify still delivered what it sent.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof && !into.is_empty() => return Ok(()),
            Err(e) if e.kind() == ErrorKind::ConnectionReset && !into.is_empty() => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

fn connect_from(target: SocketAddrV4, source: Option<Ipv4Addr>) -> std::io::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect_timeout(&SocketAddr::V4(target), RAW_TIMEOUT);
    };
    crate::flood::connect_from(source, target)
}

/// Parses an HTTP/1.1 response: status line, headers, and a body delimited by
/// `Content-Length`, chunked encoding, or the end of the connection.
fn parse_response(bytes: &[u8]) -> Result<ApiResponse, String> {
    let head_end = find(bytes, b"\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {:?}", String::from_utf8_lossy(bytes)))?;
    let head = String::from_utf8_lossy(&bytes[..head_end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &bytes[head_end + 4..];
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        decode_chunked(rest)?
    } else if let Some(length) = header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| format!("bad Content-Length {length:?}"))?;
        rest.get(..length)
            .ok_or_else(|| format!("body shorter than Content-Length {length}"))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(ApiResponse {
        status,
        headers,
        body,
    })
}

fn decode_chunked(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = find(rest, b"\r\n").ok_or("chunk size line without end")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(..size).ok_or("chunk shorter than its size")?;
        body.extend_from_slice(chunk);
        rest = rest.get(size + 2..).ok_or("chunk without its CRLF")?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
