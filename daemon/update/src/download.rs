//! A bundle downloaded from a URL into the staging folder: what `POST /api/v1/update` with
//! `{"url": …}` and the fleet request `{"update": {"url": …}}` both do. One function, so that both
//! paths go through the same outbound policy and trust as meetings (`meeting.allowed_servers`,
//! `meeting.ca_file`, the meetings' HTTPS client), the same size cap
//! (`update.max_bundle_mib`) and the same timeout (`update.download_timeout_s`).

use std::time::Duration;

use roomd_meetings::https::{DownloadSink, HttpsClient, HttpsError, parse_url, redact};
use roomd_model::config::Config;
use roomd_model::outbound::OutboundPolicy;

use crate::{Staging, UpdateError, UpdateHandle};

/// Why a download did not end in a staged bundle. The caller maps it to its status codes (the
/// API and the fleet channel use the same ones).
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The text is not a usable URL (not https, or does not parse).
    #[error("{0}")]
    BadUrl(String),
    /// `meeting.allowed_servers` does not list the host, or an address it resolves to.
    #[error("{0}")]
    NotAllowed(String),
    /// The server could not be reached, refused, or stopped sending.
    #[error("the download failed: {0}")]
    Failed(String),
    /// The update worker refused (busy, too large, not a firmware image, …).
    #[error(transparent)]
    Update(#[from] UpdateError),
    /// roomd's own setup is broken (the allowed servers or the CA file).
    #[error("{0}")]
    Internal(String),
}

/// A parsed bundle URL; [`BundleUrl::shown`] is what logs and the audit trail may say.
pub struct BundleUrl {
    url: url::Url,
    shown: String,
}

impl BundleUrl {
    /// Parses `text` as an https URL (http only to a loopback address).
    pub fn parse(text: &str) -> Result<BundleUrl, DownloadError> {
        let url = parse_url(text).map_err(|e| DownloadError::BadUrl(e.to_string()))?;
        let shown = redact(&url);
        Ok(BundleUrl { url, shown })
    }

    /// The URL without user info, query or fragment (tokens live there).
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

/// Downloads the bundle at `url` into a new staging of `updates`; the returned [`Staging`] is
/// ready for [`Staging::finish`]. A failed download marks `status.update` failed with the reason.
pub async fn download(
    updates: &UpdateHandle,
    config: &Config,
    url: BundleUrl,
) -> Result<Staging, DownloadError> {
    let BundleUrl { url, shown } = url;
    let max_bytes = u64::from(config.update.max_bundle_mib) * 1024 * 1024;
    let policy = OutboundPolicy::new(&config.meeting.allowed_servers)
        .map_err(|e| DownloadError::Internal(format!("meeting.allowed_servers: {e}")))?;
    // Refused before anything starts when the name is not listed; addresses are checked again
    // by the client's resolver when it connects.
    if let Err(refusal) = policy.check_host(url.host_str().unwrap_or_default()) {
        return Err(DownloadError::NotAllowed(format!(
            "not downloading from {shown}: {refusal}"
        )));
    }
    let ca_file = (!config.meeting.ca_file.is_empty())
        .then(|| std::path::PathBuf::from(&config.meeting.ca_file));
    let client = HttpsClient::new(ca_file.as_deref(), policy)
        .map_err(|e| DownloadError::Internal(e.to_string()))?;
    let timeout = Duration::from_secs(config.update.download_timeout_s.into());
    let staging = updates.begin(max_bytes, None)?;
    // The client blocks: a blocking thread, so that the runtime (and the fleet link) go on.
    let (sink, result) = tokio::task::spawn_blocking(move || {
        let mut sink = Sink {
            staging,
            too_large: false,
        };
        let result = client.download(&url, max_bytes, timeout, &mut sink);
        (sink, result)
    })
    .await
    .map_err(|e| DownloadError::Internal(format!("download task failed: {e}")))?;
    let Sink { staging, too_large } = sink;
    match result {
        Ok(_) => Ok(staging),
        Err(e) => {
            let message = e.to_string();
            staging.fail(format!("the download failed: {message}"));
            Err(match e {
                _ if too_large => DownloadError::Update(UpdateError::TooLarge {
                    limit_mib: config.update.max_bundle_mib,
                }),
                HttpsError::TooLarge { .. } => DownloadError::Update(UpdateError::TooLarge {
                    limit_mib: config.update.max_bundle_mib,
                }),
                HttpsError::NotAllowed { .. } => DownloadError::NotAllowed(message),
                _ => DownloadError::Failed(message),
            })
        }
    }
}

struct Sink {
    staging: Staging,
    too_large: bool,
}

impl DownloadSink for Sink {
    fn announced(&mut self, length: Option<u64>) {
        self.staging.set_total(length);
    }

    fn write(&mut self, data: &[u8]) -> Result<(), String> {
        self.staging.write_chunk(data).map_err(|e| {
            self.too_large = matches!(e, UpdateError::TooLarge { .. });
            e.to_string()
        })
    }
}
