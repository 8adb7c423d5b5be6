//! The one HTTP client that meetings use to reach signalling servers (Janus, WHIP, WHEP, other
//! rooms).
//!
//! - Trust: Mozilla's root set (the `webpki-root-certs` crate, as every browser-like client
//!   trusts) plus the PEM certificates of `meeting.ca_file`, the customer's own CA. Verification
//!   is never disabled.
//! - Plain `http://` is refused unless the host is a loopback address: tests run signalling
//!   servers on 127.0.0.1 without TLS; nothing on the network is ever spoken to in clear text.
//! - Only servers `meeting.allowed_servers` lists (`roomd_model::outbound`), checked by the resolver
//!   on the name and on every resolved address before any connection; no proxy from the
//!   environment (it would be a way around the list).
//! - No redirects: a redirect could lead from https to http or to another host with our token.
//! - Timeouts for connecting and for the answer, and a size limit on the answer's body.
//! - Errors name the URL without its query string or user info (tokens and PINs live there) and
//!   say what failed: DNS, connect, TLS verification (with the certificate problem), timeout,
//!   or the HTTP status. Never the body: errors end up in status, which every role reads, and a
//!   server's words have no place on the room's panel.
//!
//! Calls block; async callers run them with `tokio::task::spawn_blocking`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
use ureq::unversioned::transport::DefaultConnector;
use url::Url;

use crate::outbound_resolver::PolicyResolver;
use roomd_model::outbound::{OutboundPolicy, Refusal};

/// How long connecting (DNS, TCP and the TLS handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server may take to answer an ordinary request.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest answer body read: SDP and Janus replies are a few KiB; 1 MiB leaves room for
/// big rooms without letting a hostile server fill our memory.
pub const MAX_BODY: u64 = 1024 * 1024;

/// Why a signalling request failed, by the step that failed. Every `url` is redacted (no user info,
/// query or fragment); no message carries the server's body.
#[derive(Debug, thiserror::Error)]
pub enum HttpsError {
    /// The URL does not parse, or its scheme is neither https nor http.
    #[error("{url:?} is not a usable URL: {reason}")]
    BadUrl {
        /// The URL, redacted.
        url: String,
        /// What failed, as the lower layer says it.
        reason: String,
    },
    /// Plain `http://` to a host that is not a loopback address.
    #[error(
        "refusing plain http:// to {url}: meeting servers must use https:// (http:// is accepted only for loopback addresses)"
    )]
    Insecure {
        /// The URL, redacted.
        url: String,
    },
    /// `meeting.ca_file` cannot be read or holds no PEM certificate.
    #[error("cannot read the meeting CA file {}: {reason}", path.display())]
    CaFile {
        /// The configured CA file.
        path: PathBuf,
        /// What failed, as the lower layer says it.
        reason: String,
    },
    /// The host, or an address it resolves to, is not in `meeting.allowed_servers`.
    #[error("not connecting to {url}: {refusal}")]
    NotAllowed {
        /// The URL, redacted.
        url: String,
        /// Which rule refused it.
        refusal: Refusal,
    },
    /// The host name does not resolve.
    #[error("cannot resolve the host name of {url}: {reason}")]
    Dns {
        /// The URL, redacted.
        url: String,
        /// What failed, as the lower layer says it.
        reason: String,
    },
    /// The TCP connection was refused, reset or unreachable.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The URL, redacted.
        url: String,
        /// What failed, as the lower layer says it.
        reason: String,
    },
    /// The TLS handshake failed, e.g. the server's certificate does not verify.
    #[error("TLS verification of {url} failed: {reason}")]
    Tls {
        /// The URL, redacted.
        url: String,
        /// What failed, as the lower layer says it.
        reason: String,
    },
    /// A step took longer than its limit.
    #[error("{url} did not answer in time ({what})")]
    Timeout {
        /// The URL, redacted.
        url: String,
        /// Which step timed out ("connecting", "reading the answer", ...).
        what: String,
    },
    /// The answer's body is larger than [`MAX_BODY`].
    #[error("the answer of {url} is larger than {limit} bytes")]
    TooLarge {
        /// The URL, redacted.
        url: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The answer's body is not UTF-8.
    #[error("the answer of {url} is not UTF-8 text")]
    NotText {
        /// The URL, redacted.
        url: String,
    },
    /// The server answered with a status the caller cannot use (see [`Reply::success`] and
    /// [`Reply::status_error`]).
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL, redacted.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// Any other failure of the request.
    #[error("request to {url} failed: {reason}")]
    Other {
        /// The URL, redacted.
        url: String,
        /// What failed, as the lower layer says it.
        reason: String,
    },
}

/// Request methods signalling needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PATCH`.
    Patch,
    /// `DELETE` (ending a WHIP/WHEP session).
    Delete,
}

/// A request body with its media type.
#[derive(Debug, Clone, Copy)]
pub struct Body<'a> {
    /// The `Content-Type` header's value.
    pub content_type: &'a str,
    /// The bytes sent.
    pub data: &'a [u8],
}

/// An answer of any status: signalling protocols give meaning to non-2xx answers.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The URL asked, without query string or user info (for messages).
    pub url: String,
    /// The HTTP status.
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body as text (at most [`MAX_BODY`] bytes; not UTF-8 is an error).
    pub body: String,
}

impl Reply {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The media type of the body without parameters, lower case (`application/sdp`).
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type").map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
    }

    /// This reply when its status is 2xx, otherwise [`HttpsError::Status`].
    pub fn success(self) -> Result<Reply, HttpsError> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(self.status_error())
        }
    }

    /// The error describing this reply's status and body.
    pub fn status_error(&self) -> HttpsError {
        HttpsError::Status {
            url: self.url.clone(),
            status: self.status,
        }
    }
}

/// The HTTP client for meeting signalling. Cheap to clone (connections are pooled and shared).
#[derive(Clone)]
pub struct HttpsClient {
    agent: ureq::Agent,
    response_timeout: Duration,
}

impl std::fmt::Debug for HttpsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpsClient")
    }
}

impl HttpsClient {
    /// A client trusting Mozilla's roots plus the certificates in `ca_file` (PEM, one or more),
    /// reaching only what `policy` allows.
    pub fn new(ca_file: Option<&Path>, policy: OutboundPolicy) -> Result<HttpsClient, HttpsError> {
        let mut roots: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|der| Certificate::from_der(der.as_ref()).to_owned())
            .collect();
        if let Some(path) = ca_file {
            roots.extend(read_ca_file(path)?);
        }
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::new_with_certs(&roots))
            .build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .proxy(None)
            // Our own check (`check_url`) allows http:// for loopback only; ureq's is all-or-nothing.
            .https_only(false)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_recv_body(Some(RESPONSE_TIMEOUT))
            .user_agent(concat!("roomd/", env!("CARGO_PKG_VERSION")))
            .build();
        let agent = ureq::Agent::with_parts(
            config,
            DefaultConnector::default(),
            PolicyResolver::new(policy),
        );
        Ok(HttpsClient {
            agent,
            response_timeout: RESPONSE_TIMEOUT,
        })
    }

    /// The same client with another default time a server may take to answer.
    pub fn with_response_timeout(mut self, timeout: Duration) -> HttpsClient {
        self.response_timeout = timeout;
        self
    }

    /// Sends one request and reads the whole answer (at most [`MAX_BODY`] bytes).
    /// `response_timeout` is how long the server may think (the client's default,
    /// [`RESPONSE_TIMEOUT`] unless changed, when `None`; Janus long polls need longer).
    pub fn request(
        &self,
        method: Method,
        url: &Url,
        headers: &[(&str, &str)],
        body: Option<Body<'_>>,
        response_timeout: Option<Duration>,
    ) -> Result<Reply, HttpsError> {
        check_url(url)?;
        let shown = redact(url);
        let mut request = ureq::http::Request::builder()
            .method(match method {
                Method::Get => "GET",
                Method::Post => "POST",
                Method::Patch => "PATCH",
                Method::Delete => "DELETE",
            })
            .uri(url.as_str());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let other = |e: ureq::http::Error| HttpsError::Other {
            url: shown.clone(),
            reason: e.to_string(),
        };
        let timeout = response_timeout.unwrap_or(self.response_timeout);
        let sent = match body {
            Some(body) => {
                let request = request
                    .header("content-type", body.content_type)
                    .body(body.data.to_vec())
                    .map_err(other)?;
                self.agent.run(
                    self.agent
                        .configure_request(request)
                        .timeout_recv_response(Some(timeout))
                        .build(),
                )
            }
            None => {
                let request = request.body(()).map_err(other)?;
                self.agent.run(
                    self.agent
                        .configure_request(request)
                        .timeout_recv_response(Some(timeout))
                        .build(),
                )
            }
        };
        let mut response = sent.map_err(|e| classify(&shown, e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| classify(&shown, e))?;
        let body =
            String::from_utf8(bytes).map_err(|_| HttpsError::NotText { url: shown.clone() })?;
        Ok(Reply {
            url: shown,
            status,
            headers,
            body,
        })
    }
}

/// Where [`HttpsClient::download`] puts what it receives.
pub trait DownloadSink {
    /// The size the server announced (`Content-Length`), before the first bytes.
    fn announced(&mut self, length: Option<u64>);
    /// The next bytes of the body; an error stops the download with that reason.
    fn write(&mut self, data: &[u8]) -> Result<(), String>;
}

impl HttpsClient {
    /// Downloads `url` (GET) into `sink`, streaming: never more than 64 KiB in memory. At most
    /// `limit` bytes (a larger announced or received body is [`HttpsError::TooLarge`]), all of
    /// it within `timeout`. Same trust, outbound policy and redirect rule as every request.
    /// Returns the number of bytes received.
    pub fn download(
        &self,
        url: &Url,
        limit: u64,
        timeout: Duration,
        sink: &mut dyn DownloadSink,
    ) -> Result<u64, HttpsError> {
        use std::io::Read;
        check_url(url)?;
        let shown = redact(url);
        let request = ureq::http::Request::builder()
            .method("GET")
            .uri(url.as_str())
            .body(())
            .map_err(|e| HttpsError::Other {
                url: shown.clone(),
                reason: e.to_string(),
            })?;
        let mut response = self
            .agent
            .run(
                self.agent
                    .configure_request(request)
                    .timeout_global(Some(timeout))
                    .timeout_recv_body(Some(timeout))
                    .build(),
            )
            .map_err(|e| classify(&shown, e))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(HttpsError::Status { url: shown, status });
        }
        let announced = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|length| length > limit) {
            return Err(HttpsError::TooLarge { url: shown, limit });
        }
        sink.announced(announced);
        let mut reader = response.body_mut().with_config().limit(limit).reader();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    // ureq reports its own errors (limit, timeout) through io::Error.
                    return Err(
                        match e.into_inner().map(|inner| inner.downcast::<ureq::Error>()) {
                            Some(Ok(inner)) => classify(&shown, *inner),
                            Some(Err(other)) => HttpsError::Other {
                                url: shown,
                                reason: other.to_string(),
                            },
                            None => HttpsError::Other {
                                url: shown,
                                reason: "reading the body failed".to_owned(),
                            },
                        },
                    );
                }
            };
            total += n as u64;
            sink.write(&buf[..n]).map_err(|reason| HttpsError::Other {
                url: shown.clone(),
                reason,
            })?;
        }
        Ok(total)
    }
}

/// Parses `text` as an absolute URL that this client may use.
pub fn parse_url(text: &str) -> Result<Url, HttpsError> {
    let url = Url::parse(text).map_err(|e| HttpsError::BadUrl {
        url: redact_text(text),
        reason: e.to_string(),
    })?;
    check_url(&url)?;
    Ok(url)
}

/// Refuses schemes other than https, and http unless the host is a loopback address.
pub fn check_url(url: &Url) -> Result<(), HttpsError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(HttpsError::Insecure { url: redact(url) }),
        other => Err(HttpsError::BadUrl {
            url: redact(url),
            reason: format!("the scheme {other:?} is not https"),
        }),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        // Not "localhost": a name could resolve anywhere (/etc/hosts, a search domain).
        _ => false,
    }
}

/// `url` without user info, query string or fragment: what may appear in messages and logs.
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// Like [`redact`] for text that did not parse as a URL.
fn redact_text(text: &str) -> String {
    let cut = text.find(['?', '#']).unwrap_or(text.len());
    let head = &text[..cut];
    match (head.find("://"), head.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}{}", &head[..scheme_end + 3], &head[at + 1..])
        }
        _ => head.to_owned(),
    }
}

fn read_ca_file(path: &Path) -> Result<Vec<Certificate<'static>>, HttpsError> {
    let fail = |reason: String| HttpsError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        // A key or other block next to the certificates is not an error, just not a root.
        if let ureq::tls::PemItem::Certificate(cert) =
            item.map_err(|e| fail(format!("not valid PEM: {e}")))?
        {
            certs.push(cert);
        }
    }
    if certs.is_empty() {
        return Err(fail("it holds no PEM certificate".to_owned()));
    }
    Ok(certs)
}

/// Turns ureq's error into one that says which step failed.
fn classify(url: &str, error: ureq::Error) -> HttpsError {
    let url = url.to_owned();
    match error {
        ureq::Error::HostNotFound => HttpsError::Dns {
            url,
            reason: "no address found".to_owned(),
        },
        ureq::Error::ConnectionFailed => HttpsError::Connect {
            url,
            reason: "connection failed".to_owned(),
        },
        ureq::Error::Timeout(what) => HttpsError::Timeout {
            url,
            what: timeout_name(what).to_owned(),
        },
        ureq::Error::BodyExceedsLimit(limit) => HttpsError::TooLarge { url, limit },
        ureq::Error::Rustls(e) => HttpsError::Tls {
            url,
            reason: e.to_string(),
        },
        ureq::Error::Tls(reason) => HttpsError::Tls {
            url,
            reason: reason.to_owned(),
        },
        ureq::Error::Io(e) => {
            // The policy resolver's refusal.
            if let Some(refusal) = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<Refusal>())
            {
                return HttpsError::NotAllowed {
                    url,
                    refusal: refusal.clone(),
                };
            }
            // rustls reports handshake failures through the stream as an io::Error.
            if let Some(tls) = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                return HttpsError::Tls {
                    url,
                    reason: tls.to_string(),
                };
            }
            // ureq passes the resolver's failure on as std's io::Error, whose only mark is
            // the text std gives getaddrinfo failures.
            let text = e.to_string();
            if let Some(reason) = text.strip_prefix("failed to lookup address information: ") {
                return HttpsError::Dns {
                    url,
                    reason: reason.to_owned(),
                };
            }
            match e.kind() {
                std::io::ErrorKind::ConnectionRefused
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::NotConnected
                | std::io::ErrorKind::AddrNotAvailable
                | std::io::ErrorKind::HostUnreachable
                | std::io::ErrorKind::NetworkUnreachable => HttpsError::Connect {
                    url,
                    reason: e.to_string(),
                },
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                    HttpsError::Timeout {
                        url,
                        what: "reading".to_owned(),
                    }
                }
                _ => HttpsError::Other {
                    url,
                    reason: e.to_string(),
                },
            }
        }
        other => HttpsError::Other {
            url,
            reason: other.to_string(),
        },
    }
}

fn timeout_name(what: ureq::Timeout) -> &'static str {
    match what {
        ureq::Timeout::Resolve => "resolving the host name",
        ureq::Timeout::Connect => "connecting",
        ureq::Timeout::SendRequest | ureq::Timeout::SendBody => "sending the request",
        ureq::Timeout::RecvResponse => "waiting for the answer",
        ureq::Timeout::RecvBody => "reading the answer",
        _ => "overall time limit",
    }
}

#[cfg(test)]
#[path = "https_tests.rs"]
mod tests;
