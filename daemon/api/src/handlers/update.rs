//! `POST /api/v1/update`: a firmware bundle, uploaded or downloaded, handed to the update worker.
//!
//! The bundle is streamed to the staging folder chunk by chunk (never whole in memory) and
//! counted against `update.max_bundle_mib` while it arrives. The answer comes once the worker
//! has verified it (structure, signature, compatible, security floor) and RAUC installs it, so
//! that every refusal is this request's error; `status.update` shows the progress meanwhile.
//!
//! [`download_bundle`] is public: the fleet channel's update request downloads through it.

use std::time::Duration;

use actix_web::http::header;
use actix_web::web::{self, BytesMut};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;

use crate::ApiState;
use crate::access::AuditDetail;
use crate::error::ApiError;
use roomd_meetings::https::{DownloadSink, HttpsClient, HttpsError, parse_url};
use roomd_model::config::Config;
use roomd_model::outbound::OutboundPolicy;
use roomd_update::{Staging, UpdateError, UpdateHandle};

/// Largest JSON body (`{"url": …}`).
const MAX_JSON_BYTES: usize = 8192;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UrlRequest {
    url: String,
}

pub(crate) async fn install(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let config = state.room.config();
    let max_bytes = u64::from(config.update.max_bundle_mib) * 1024 * 1024;
    let media_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let staging = match media_type.as_str() {
        "application/octet-stream" => upload(&req, &state, payload, max_bytes).await?,
        "application/json" => {
            let url = read_url(payload).await?;
            download(&req, &state, &config, &url).await?
        }
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "send the bundle as application/octet-stream, or {{\"url\": \"https://…\"}} as \
                 application/json (got {:?})",
                other
            )));
        }
    };
    let status = staging.finish().await?;
    Ok(HttpResponse::Accepted().json(status))
}

async fn upload(
    req: &HttpRequest,
    state: &ApiState,
    mut payload: web::Payload,
    max_bytes: u64,
) -> Result<Staging, ApiError> {
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    req.extensions_mut().insert(AuditDetail(format!(
        "update upload of {} bytes",
        announced.map_or("unannounced".to_owned(), |n| n.to_string())
    )));
    let mut staging = state.updates.begin(max_bytes, announced)?;
    while let Some(chunk) = payload.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                let message = format!("the upload stopped after {} bytes: {e}", staging.bytes());
                staging.fail(message.clone());
                return Err(ApiError::BadRequest(message));
            }
        };
        // A local file write of one chunk: short enough for the worker thread.
        staging.write_chunk(&chunk)?;
    }
    Ok(staging)
}

async fn read_url(mut payload: web::Payload) -> Result<String, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::BadRequest(format!("cannot read the request body: {e}")))?;
        if body.len() + chunk.len() > MAX_JSON_BYTES {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_JSON_BYTES,
            });
        }
        body.extend_from_slice(&chunk);
    }
    let request: UrlRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "request body must be {{\"url\": \"https://…\"}}: {e}"
        ))
    })?;
    Ok(request.url)
}

/// `POST /api/v1/update` with `{"url": …}`: the audit detail names the URL (without its query),
/// then [`download_bundle`].
async fn download(
    req: &HttpRequest,
    state: &ApiState,
    config: &Config,
    text: &str,
) -> Result<Staging, ApiError> {
    let url = BundleUrl::parse(text)?;
    req.extensions_mut()
        .insert(AuditDetail(format!("update download from {}", url.shown())));
    download_bundle(&state.updates, config, url).await
}

/// A bundle's URL, checked (https, or http to a loopback address).
pub struct BundleUrl {
    text: String,
    shown: String,
}

impl BundleUrl {
    /// Checks `text`; 400 when it is not a usable URL.
    pub fn parse(text: &str) -> Result<BundleUrl, ApiError> {
        let url = parse_url(text).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let shown = roomd_meetings::https::redact(&url);
        Ok(BundleUrl {
            text: text.to_owned(),
            shown,
        })
    }

    /// The URL without user info, query or fragment (tokens live there): what logs and the
    /// audit trail may say.
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

/// Downloads a bundle into a new staging of `updates`, under the meetings' outbound policy and
/// trust (`meeting.allowed_servers`, `meeting.ca_file`) with the meetings' HTTPS client, within
/// `update.max_bundle_mib` and `update.download_timeout_s`. The API and the fleet channel's
/// `{"update": {"url": …}}` both come here, so that both download alike and fail with the same
/// statuses (403 not allowed, 413 too large, 502 download failed, 409 busy). The returned
/// [`Staging`] is ready for [`Staging::finish`]; a failed download marks `status.update` failed.
pub async fn download_bundle(
    updates: &UpdateHandle,
    config: &Config,
    url: BundleUrl,
) -> Result<Staging, ApiError> {
    let BundleUrl { text, shown } = url;
    // Parsed again (it parsed in BundleUrl::parse, so it does here): the url crate's type is
    // the meetings' business, not part of this function's signature.
    let url = parse_url(&text).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let max_bytes = u64::from(config.update.max_bundle_mib) * 1024 * 1024;
    let policy = OutboundPolicy::new(&config.meeting.allowed_servers)
        .map_err(|e| ApiError::Internal(format!("meeting.allowed_servers: {e}")))?;
    // Refused before anything starts when the name is not listed; addresses are checked again
    // by the client's resolver when it connects.
    if let Err(refusal) = policy.check_host(url.host_str().unwrap_or_default()) {
        return Err(ApiError::Forbidden(format!(
            "not downloading from {shown}: {refusal}"
        )));
    }
    let ca_file = (!config.meeting.ca_file.is_empty())
        .then(|| std::path::PathBuf::from(&config.meeting.ca_file));
    let client = HttpsClient::new(ca_file.as_deref(), policy)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let timeout = Duration::from_secs(config.update.download_timeout_s.into());
    let staging = updates.begin(max_bytes, None)?;
    // The client blocks: on a blocking thread, so that the runtime (and the fleet link) go on.
    let (staging, result) = tokio::task::spawn_blocking(move || {
        let mut sink = Sink {
            staging,
            too_large: false,
        };
        let result = client.download(&url, max_bytes, timeout, &mut sink);
        (sink, result)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("download task failed: {e}")))?;
    let Sink { staging, too_large } = staging;
    match result {
        Ok(_) => Ok(staging),
        Err(e) => {
            let message = e.to_string();
            staging.fail(format!("the download failed: {message}"));
            Err(match e {
                _ if too_large => ApiError::from(UpdateError::TooLarge {
                    limit_mib: config.update.max_bundle_mib,
                }),
                HttpsError::TooLarge { .. } => ApiError::from(UpdateError::TooLarge {
                    limit_mib: config.update.max_bundle_mib,
                }),
                HttpsError::NotAllowed { .. } => ApiError::Forbidden(message),
                _ => ApiError::BadGateway(format!("the download failed: {message}")),
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

impl From<UpdateError> for ApiError {
    fn from(e: UpdateError) -> Self {
        let message = e.to_string();
        match e {
            // The request does not fit this system: nothing will change by asking again.
            UpdateError::NotFirmwareImage(_) | UpdateError::Busy { .. } => {
                ApiError::Conflict(message)
            }
            UpdateError::NotAvailable(_) => ApiError::Unavailable(message),
            UpdateError::TooLarge { .. } => ApiError::TooLarge(message),
            UpdateError::Corrupt(_)
            | UpdateError::BadSignature
            | UpdateError::WrongCompatible { .. }
            | UpdateError::BelowFloor { .. } => ApiError::Unprocessable {
                field: None,
                message,
            },
            UpdateError::Incomplete(_) => ApiError::BadRequest(message),
            UpdateError::NothingToReboot => ApiError::InvalidCommand(message),
            UpdateError::Staging { .. } | UpdateError::Service(_) => ApiError::Internal(message),
        }
    }
}
