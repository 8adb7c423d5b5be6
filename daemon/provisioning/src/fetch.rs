//! Fetching the bundle: one HTTPS GET with a size cap and time limits, no redirects, no proxy
//! from the environment. The server is verified against `provisioning.server_ca_file` (or
//! Mozilla's roots), though what the room trusts in the end is the bundle's signature.
//!
//! Blocks: callers run it with `spawn_blocking`.

use std::path::Path;
use std::time::Duration;

use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

use crate::bundle::MAX_BUNDLE_BYTES;

/// How long connecting (DNS, TCP, TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the whole download may take.
const TOTAL_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the bundle could not be fetched; worth another attempt later.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// `provisioning.server_ca_file` cannot be read or holds no certificate.
    #[error("cannot read provisioning.server_ca_file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The bundle is larger than the cap.
    #[error("the bundle at {url} is larger than {MAX_BUNDLE_BYTES} bytes")]
    TooLarge {
        /// The URL.
        url: String,
    },
    /// Connecting, TLS or reading failed.
    #[error("cannot fetch {url}: {reason}")]
    Transport {
        /// The URL.
        url: String,
        /// What failed, as the lower layer says it.
        reason: String,
    },
}

/// `url` as shown in status, events and logs: without query and fragment, where a server may
/// expect an access token (every role reads the status).
pub(crate) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            parsed.set_query(None);
            parsed.set_fragment(None);
            parsed.to_string()
        }
        Err(_) => url.to_owned(),
    }
}

/// The bundle's bytes from `url` (an https URL checked by the configuration). Errors name the
/// URL redacted.
pub(crate) fn fetch(url: &str, server_ca_file: Option<&Path>) -> Result<Vec<u8>, FetchError> {
    let shown = redact(url);
    let roots = match server_ca_file {
        Some(path) => read_ca_file(path)?,
        None => webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|der| Certificate::from_der(der.as_ref()).to_owned())
            .collect(),
    };
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::new_with_certs(&roots))
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .proxy(None)
        .https_only(true)
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(TOTAL_TIMEOUT))
        .user_agent(concat!("roomd/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let transport = |reason: String| FetchError::Transport {
        url: shown.clone(),
        reason,
    };
    let mut response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::BodyExceedsLimit(_) => FetchError::TooLarge { url: shown.clone() },
        e => transport(e.to_string()),
    })?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(FetchError::Status {
            url: shown.clone(),
            status,
        });
    }
    response
        .body_mut()
        .with_config()
        .limit(MAX_BUNDLE_BYTES)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => FetchError::TooLarge { url: shown.clone() },
            e => transport(e.to_string()),
        })
}

fn read_ca_file(path: &Path) -> Result<Vec<Certificate<'static>>, FetchError> {
    let fail = |reason: String| FetchError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(fail("no PEM certificate in it".to_owned()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_urls_lose_query_and_fragment() {
        assert_eq!(
            redact("https://p.example.org:8443/b.json?token=s3cret#x"),
            "https://p.example.org:8443/b.json"
        );
    }
}
