//! `POST /api/v1/update`: a firmware bundle, uploaded or downloaded, handed to the update worker.
//!
//! The bundle is streamed to the staging folder chunk by chunk (never whole in memory) and
//! counted against `update.max_bundle_mib` while it arrives. The answer comes once the worker
//! has verified it (structure, signature, compatible, security floor) and RAUC installs it, so
//! that every refusal is this request's error; `status.update` shows the progress meanwhile.

use actix_web::http::header;
use actix_web::web::{self, BytesMut};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;

use crate::ApiState;
use crate::access::AuditDetail;
use crate::error::ApiError;
use roomd_update::{BundleUrl, DownloadError, Staging, UpdateError};

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

/// Downloads the bundle under the meetings' outbound policy and trust (`meeting.allowed_servers`,
/// `meeting.ca_file`), with the meetings' HTTPS client; the fleet channel's update request goes
/// through the same [`roomd_update::download`].
async fn download(
    req: &HttpRequest,
    state: &ApiState,
    config: &roomd_model::config::Config,
    text: &str,
) -> Result<Staging, ApiError> {
    let url = BundleUrl::parse(text)?;
    req.extensions_mut()
        .insert(AuditDetail(format!("update download from {}", url.shown())));
    Ok(roomd_update::download(&state.updates, config, url).await?)
}

impl From<DownloadError> for ApiError {
    fn from(e: DownloadError) -> Self {
        match e {
            DownloadError::BadUrl(message) => ApiError::BadRequest(message),
            DownloadError::NotAllowed(message) => ApiError::Forbidden(message),
            DownloadError::Failed(_) => ApiError::BadGateway(e.to_string()),
            DownloadError::Update(e) => ApiError::from(e),
            DownloadError::Internal(message) => ApiError::Internal(message),
        }
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
