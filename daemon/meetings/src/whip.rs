//! WHIP (RFC 9725) and WHEP clients: one HTTP exchange sets up a session, one ends it.
//!
//! `POST` the SDP offer (`application/sdp`, optional bearer token) to the endpoint; the server
//! answers `201 Created` with the SDP answer, the session's resource URL in `Location` (resolved
//! against the endpoint URL, it may be relative) and optionally an `ETag`. Leaving is a `DELETE`
//! of that resource. Offers carry all candidates (gathered before posting), so no trickle `PATCH`.
//! WHEP has the same semantics with roles swapped (we receive).
//!
//! The `Location` must stay on the endpoint's origin (scheme, host and port): the token goes
//! with the `DELETE`, and a server must not be able to send it, or us, somewhere else.

use std::fmt;

use url::Url;

use super::https::{Body, HttpsClient, HttpsError, Method, Reply, parse_url, redact};

const SDP: &str = "application/sdp";

/// Which of the two protocols (for messages; the exchange is the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// WHIP: we send media (RFC 9725).
    Whip,
    /// WHEP: we receive media.
    Whep,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Whip => "WHIP",
            Protocol::Whep => "WHEP",
        })
    }
}

/// Why a WHIP or WHEP exchange failed. Every `url` is redacted (no user info, query or fragment).
#[derive(Debug, thiserror::Error)]
pub enum WhipError {
    /// The HTTPS request itself failed.
    #[error(transparent)]
    Http(#[from] HttpsError),
    /// HTTP 401 or 403 although a bearer token was sent.
    #[error("the {protocol} server {url} refused the token (HTTP {status})")]
    TokenRefused {
        /// WHIP or WHEP.
        protocol: Protocol,
        /// The endpoint or resource, redacted.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// HTTP 401 or 403 and no token is configured.
    #[error("the {protocol} server {url} requires a token (HTTP {status}) and none is configured")]
    TokenRequired {
        /// WHIP or WHEP.
        protocol: Protocol,
        /// The endpoint or resource, redacted.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// HTTP 404: no such endpoint.
    #[error("the {protocol} endpoint {url} does not exist (HTTP 404)")]
    NotFound {
        /// WHIP or WHEP.
        protocol: Protocol,
        /// The endpoint or resource, redacted.
        url: String,
    },
    /// Any other non-2xx status.
    #[error("the {protocol} server {url} answered HTTP {status}")]
    Status {
        /// WHIP or WHEP.
        protocol: Protocol,
        /// The endpoint or resource, redacted.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The offer got a 2xx answer other than `201 Created`.
    #[error(
        "the {protocol} server {url} answered the offer with HTTP {status} instead of 201 Created"
    )]
    NotCreated {
        /// WHIP or WHEP.
        protocol: Protocol,
        /// The endpoint or resource, redacted.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// `201 Created` without a `Location` header.
    #[error("the {protocol} server {url} gave no Location for the session it created")]
    MissingLocation {
        /// WHIP or WHEP.
        protocol: Protocol,
        /// The endpoint or resource, redacted.
        url: String,
    },
    /// The `Location` does not resolve to a usable URL on the endpoint's origin.
    #[error("the {protocol} server {url} gave an unusable Location: {reason}")]
    BadLocation {
        /// WHIP or WHEP.
        protocol: Protocol,
        /// The endpoint or resource, redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The answer's media type is not `application/sdp`.
    #[error("the {protocol} server {url} answered with {content_type} instead of application/sdp")]
    NotSdp {
        /// WHIP or WHEP.
        protocol: Protocol,
        /// The endpoint or resource, redacted.
        url: String,
        /// The media type received, or `no content type`.
        content_type: String,
    },
    /// The answer's body does not start with `v=0`.
    #[error("the {protocol} server {url} answered with an SDP that does not start with v=0")]
    BadSdp {
        /// WHIP or WHEP.
        protocol: Protocol,
        /// The endpoint or resource, redacted.
        url: String,
    },
    /// The configured token is empty or has characters not allowed in a header (control or
    /// non-ASCII).
    #[error("the bearer token contains characters not allowed in an HTTP header")]
    BadToken,
}

/// A session the server created: the answer and what is needed to end it.
#[derive(Clone)]
pub struct WhipSession {
    /// WHIP or WHEP.
    pub protocol: Protocol,
    /// The session's resource (absolute; `DELETE` it to leave).
    pub resource: Url,
    /// The server's SDP answer.
    pub answer: String,
    /// The session's `ETag`, if the server sent one.
    pub etag: Option<String>,
    token: Option<String>,
}

impl fmt::Debug for WhipSession {
    // Without the token: sessions end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhipSession")
            .field("protocol", &self.protocol)
            .field("resource", &redact(&self.resource))
            .field("etag", &self.etag)
            .finish_non_exhaustive()
    }
}

/// Posts `offer` to `endpoint` and returns the created session.
pub fn offer(
    http: &HttpsClient,
    protocol: Protocol,
    endpoint: &str,
    token: Option<&str>,
    offer: &str,
) -> Result<WhipSession, WhipError> {
    let url = parse_url(endpoint)?;
    let authorization = bearer(token)?;
    let mut headers = vec![("accept", SDP)];
    if let Some(value) = &authorization {
        headers.push(("authorization", value));
    }
    let body = Body {
        content_type: SDP,
        data: offer.as_bytes(),
    };
    let reply = http.request(Method::Post, &url, &headers, Some(body), None)?;
    refuse_errors(protocol, &reply, token.is_some())?;
    if reply.status != 201 {
        return Err(WhipError::NotCreated {
            protocol,
            url: reply.url,
            status: reply.status,
        });
    }
    let location = reply
        .header("location")
        .ok_or_else(|| WhipError::MissingLocation {
            protocol,
            url: reply.url.clone(),
        })?;
    let resource = resolve_location(protocol, &url, location)?;
    match reply.media_type() {
        Some(t) if t == SDP => {}
        other => {
            return Err(WhipError::NotSdp {
                protocol,
                url: reply.url,
                content_type: other.unwrap_or_else(|| "no content type".to_owned()),
            });
        }
    }
    if !reply.body.trim_start().starts_with("v=0") {
        return Err(WhipError::BadSdp {
            protocol,
            url: reply.url,
        });
    }
    Ok(WhipSession {
        protocol,
        resource,
        etag: reply.header("etag").map(str::to_owned),
        answer: reply.body,
        token: token.map(str::to_owned),
    })
}

impl WhipSession {
    /// Ends the session (`DELETE` of the resource). A resource that is already gone (404, 410)
    /// counts as ended.
    pub fn delete(&self, http: &HttpsClient) -> Result<(), WhipError> {
        let authorization = bearer(self.token.as_deref())?;
        let mut headers = Vec::new();
        if let Some(value) = &authorization {
            headers.push(("authorization", value.as_str()));
        }
        let reply = http.request(Method::Delete, &self.resource, &headers, None, None)?;
        if reply.status == 404 || reply.status == 410 {
            return Ok(());
        }
        refuse_errors(self.protocol, &reply, self.token.is_some())?;
        Ok(())
    }
}

fn bearer(token: Option<&str>) -> Result<Option<String>, WhipError> {
    match token {
        None => Ok(None),
        // A header value cannot hold control characters; catching it here names the cause.
        Some(t) if t.is_empty() || t.chars().any(|c| c.is_control() || !c.is_ascii()) => {
            Err(WhipError::BadToken)
        }
        Some(t) => Ok(Some(format!("Bearer {t}"))),
    }
}

/// The typed error for a non-2xx reply; `Ok` for 2xx.
fn refuse_errors(protocol: Protocol, reply: &Reply, had_token: bool) -> Result<(), WhipError> {
    let url = reply.url.clone();
    match reply.status {
        200..=299 => Ok(()),
        401 | 403 if had_token => Err(WhipError::TokenRefused {
            protocol,
            url,
            status: reply.status,
        }),
        401 | 403 => Err(WhipError::TokenRequired {
            protocol,
            url,
            status: reply.status,
        }),
        404 => Err(WhipError::NotFound { protocol, url }),
        status => Err(WhipError::Status {
            protocol,
            url,
            status,
        }),
    }
}

fn resolve_location(protocol: Protocol, base: &Url, location: &str) -> Result<Url, WhipError> {
    let bad = |reason: String| WhipError::BadLocation {
        protocol,
        url: redact(base),
        reason,
    };
    let resource = base.join(location).map_err(|e| bad(e.to_string()))?;
    if resource.origin() != base.origin() {
        return Err(bad(format!(
            "it leads away from the endpoint's origin {} (to {})",
            base.origin().ascii_serialization(),
            resource.origin().ascii_serialization()
        )));
    }
    super::https::check_url(&resource).map_err(|e| bad(e.to_string()))?;
    Ok(resource)
}

#[cfg(test)]
#[path = "whip_tests.rs"]
mod tests;
