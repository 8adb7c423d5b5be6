//! API errors: every failure becomes a status code and a JSON body that names the problem.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::accounts::AccountsError;
use roomd_core::{CommandError, CoreError};
use roomd_model::config::ConfigError;

/// A failed request. Each variant has one status code and one `error` code in the JSON body
/// (`{"error", "message", "field"?}`); the message is the `Display` text.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `bad_request`: the request is malformed (unparsable JSON, bad query).
    #[error("{0}")]
    BadRequest(String),
    /// 401 `unauthorized`, with `WWW-Authenticate: Bearer`: no valid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403 `forbidden`: the caller's role does not allow it, a CSRF token is missing, or a
    /// code is wrong.
    #[error("{0}")]
    Forbidden(String),
    /// 404 `not_found`.
    #[error("{0}")]
    NotFound(String),
    /// 405 `method_not_allowed` (the route table adds `Allow`).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 409 `conflict`: the request does not fit the current state (already claimed, name taken).
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than the limit of {limit} bytes (api.max_body_bytes)")]
    /// 413 `payload_too_large`.
    PayloadTooLarge {
        /// `api.max_body_bytes`, in bytes.
        limit: usize,
    },
    /// 413 `payload_too_large` for a limit other than `api.max_body_bytes` (an update bundle).
    #[error("{0}")]
    TooLarge(String),
    /// 415 `unsupported_media_type`: the body is not of the content type the route takes.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422 `invalid_config`: a configuration patch was refused.
    #[error("{message}")]
    InvalidConfig {
        /// The configuration key at fault, dotted (`audio.volume`), if one is.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// 422 `invalid_command`: the room core refused a command or its arguments.
    #[error("{0}")]
    InvalidCommand(String),
    /// 422 `invalid_request`: a well-formed request with an unacceptable value.
    #[error("{message}")]
    Unprocessable {
        /// The request field at fault, if one is.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    #[error("too many failed attempts; try again in {} s", retry_after.as_secs().max(1))]
    /// 429 `too_many_requests`, with `Retry-After`: lockout or rate limit.
    TooManyRequests {
        /// When to try again; sent in whole seconds, at least 1.
        retry_after: Duration,
    },
    /// 502 `bad_gateway`: a server roomd fetched from failed (an update bundle's URL).
    #[error("{0}")]
    BadGateway(String),
    /// 503 `unavailable`: a part of roomd the request needs is not working (stopping core,
    /// unwritable audit log, no TPM attestation).
    #[error("{0}")]
    Unavailable(String),
    /// 503 with `Retry-After`: a bounded resource is in use; the same request later will do.
    #[error("{message}")]
    Busy {
        /// What is in use.
        message: String,
        /// When to try again; sent in whole seconds, at least 1.
        retry_after: Duration,
    },
    /// A plain request where only a WebSocket upgrade is served (`GET /api/v1/events`).
    #[error("{0}")]
    UpgradeRequired(String),
    /// 500 `internal`: roomd's fault, not the caller's; the detail is logged at error level.
    #[error("internal error: {0}")]
    Internal(String),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    /// The HTTP status this error answers with (the audit log records it for D-Bus callers too).
    pub fn http_status(&self) -> u16 {
        self.status_code().as_u16()
    }

    /// The `error` code of the JSON body (`invalid_command`, `forbidden`...); the D-Bus
    /// interface names its errors after it.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge { .. } | ApiError::TooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::InvalidConfig { .. } => "invalid_config",
            ApiError::InvalidCommand(_) => "invalid_command",
            ApiError::Unprocessable { .. } => "invalid_request",
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::BadGateway(_) => "bad_gateway",
            ApiError::Unavailable(_) | ApiError::Busy { .. } => "unavailable",
            ApiError::UpgradeRequired(_) => "upgrade_required",
            ApiError::Internal(_) => "internal",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            ApiError::InvalidConfig { field, .. } | ApiError::Unprocessable { field, .. } => {
                field.as_deref()
            }
            _ => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } | ApiError::TooLarge(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::InvalidConfig { .. }
            | ApiError::InvalidCommand(_)
            | ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) | ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::UpgradeRequired(_) => StatusCode::UPGRADE_REQUIRED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(detail) = self {
            tracing::error!("internal API error: {detail}");
        }
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::Unauthorized(_) = self {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if let ApiError::UpgradeRequired(_) = self {
            // RFC 9110 15.5.22: a 426 names the protocol to switch to.
            response.insert_header((header::UPGRADE, HeaderValue::from_static("websocket")));
        }
        if let ApiError::TooManyRequests { retry_after } | ApiError::Busy { retry_after, .. } = self
        {
            response.insert_header((
                header::RETRY_AFTER,
                retry_after.as_secs().max(1).to_string(),
            ));
        }
        response.json(ErrorBody {
            error: self.code(),
            message: self.to_string(),
            field: self.field(),
        })
    }
}

impl From<ConfigError> for ApiError {
    fn from(e: ConfigError) -> Self {
        match e {
            ConfigError::Patch { .. } => ApiError::InvalidConfig {
                field: e.key().map(str::to_owned),
                message: e.to_string(),
            },
            // Anything else (the file could not be written) is the device's fault, not the caller's.
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Config(c) => c.into(),
            CoreError::Stopped => ApiError::Unavailable("the room core is shutting down".into()),
            CoreError::Refused(message) => ApiError::InvalidCommand(message),
            CoreError::NotFound(message) => ApiError::NotFound(message),
            CoreError::Forbidden(message) => ApiError::Forbidden(message),
            CoreError::Failed(message) => ApiError::Internal(message),
            CoreError::TooManyAttempts { retry_after_secs } => ApiError::TooManyRequests {
                retry_after: Duration::from_secs(retry_after_secs),
            },
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Unknown { .. } => ApiError::NotFound(e.to_string()),
            CommandError::InvalidArguments { .. } => ApiError::InvalidCommand(e.to_string()),
        }
    }
}

impl From<AccountsError> for ApiError {
    fn from(e: AccountsError) -> Self {
        use AccountsError as A;
        let message = e.to_string();
        match e {
            A::BadCredentials => ApiError::Unauthorized(message),
            A::WrongClaimCode | A::WrongPairingCode { .. } => ApiError::Forbidden(message),
            A::NoPairingRequest => ApiError::NotFound(message),
            A::InvalidPanelName => ApiError::Unprocessable {
                field: Some("name".into()),
                message,
            },
            A::LockedOut { retry_after } => ApiError::TooManyRequests { retry_after },
            A::AccountPaced { retry_after } | A::PairingBusy { retry_after } => {
                ApiError::TooManyRequests { retry_after }
            }
            A::Busy { retry_after } => ApiError::Busy {
                message,
                retry_after,
            },
            A::AlreadyClaimed | A::UserExists { .. } | A::LastAdmin { .. } => {
                ApiError::Conflict(message)
            }
            A::NotClaimed => ApiError::Conflict(message),
            A::UserNotFound { .. } | A::TokenNotFound { .. } => ApiError::NotFound(message),
            A::InvalidUsername { .. } => ApiError::Unprocessable {
                field: Some("username".into()),
                message,
            },
            A::WeakPassword { .. } => ApiError::Unprocessable {
                field: Some("password".into()),
                message,
            },
            A::InvalidTokenName { .. } => ApiError::Unprocessable {
                field: Some("name".into()),
                message,
            },
            A::RoleNotForUsers { .. } => ApiError::Unprocessable {
                field: Some("role".into()),
                message,
            },
            _ => ApiError::Internal(message),
        }
    }
}

/// Runs blocking work (password hashing, file writes) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    actix_web::web::block(work)
        .await
        .map_err(|e| ApiError::Internal(format!("blocking task failed: {e}")))?
}
