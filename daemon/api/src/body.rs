//! JSON request bodies: size limit, content type and parse errors that say what is wrong.

use std::ops::Deref;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ApiState;
use super::error::ApiError;

/// How long a whole request body may take to arrive: a client that trickles its body (or
/// announces more than it sends) must not hold a connection and its buffer forever. Bodies
/// are at most `api.max_body_bytes`; on any link a room is on they arrive in well under this.
pub(crate) const BODY_READ_DEADLINE: Duration = Duration::from_secs(10);

/// Nesting deeper than this is refused before parsing: no legitimate request needs it, and it
/// keeps hostile input from exhausting the stack.
const MAX_DEPTH: usize = 32;

/// A request body read up to `api.max_body_bytes` and no further: a larger body is refused
/// while it arrives, so that no client can make roomd hold more than the limit in memory.
pub(crate) struct LimitedBody(Bytes);

impl Deref for LimitedBody {
    type Target = Bytes;
    fn deref(&self) -> &Bytes {
        &self.0
    }
}

impl FromRequest for LimitedBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<ApiState>>()
            .map(|state| state.room.config().api.max_body_bytes)
            .unwrap_or(0);
        let announced = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if announced.is_some_and(|length| length > limit) {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            let read = async {
                let mut body = BytesMut::new();
                while let Some(chunk) = payload.next().await {
                    let chunk = chunk.map_err(|e| {
                        ApiError::BadRequest(format!("cannot read the request body: {e}"))
                    })?;
                    if body.len() + chunk.len() > limit {
                        return Err(ApiError::PayloadTooLarge { limit });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(LimitedBody(body.freeze()))
            };
            tokio::time::timeout(BODY_READ_DEADLINE, read)
                .await
                .unwrap_or_else(|_| {
                    Err(ApiError::BadRequest(format!(
                        "the request body did not arrive within {} s",
                        BODY_READ_DEADLINE.as_secs()
                    )))
                })
        })
    }
}

/// Parses a JSON body into `T`, naming the offending field on failure.
pub(crate) fn parse<T: DeserializeOwned>(req: &HttpRequest, body: &Bytes) -> Result<T, ApiError> {
    let value = parse_value(req, body)?;
    roomd_base::json_error::deserialize(value).map_err(|e| ApiError::Unprocessable {
        field: e.field,
        message: e.message,
    })
}

/// Checks the content type and parses the body as any JSON value.
pub(crate) fn parse_value(req: &HttpRequest, body: &Bytes) -> Result<Value, ApiError> {
    check_content_type(req)?;
    if body.is_empty() {
        return Err(ApiError::BadRequest(
            "request body is empty; send a JSON document".into(),
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::BadRequest(format!("request body is not valid UTF-8: {e}")))?;
    if nesting_depth(text) > MAX_DEPTH {
        return Err(ApiError::BadRequest(format!(
            "request body is nested deeper than {MAX_DEPTH} levels"
        )));
    }
    serde_json::from_str(text)
        .map_err(|e| ApiError::BadRequest(format!("request body is not valid JSON: {e}")))
}

fn check_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .ok_or_else(|| {
            ApiError::UnsupportedMediaType("missing Content-Type; send application/json".into())
        })?
        .to_str()
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json")
        || essence.eq_ignore_ascii_case("application/merge-patch+json")
    {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {essence:?} is not supported; send application/json"
        )))
    }
}

/// Deepest bracket nesting, ignoring brackets inside strings.
fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for c in text.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::nesting_depth;

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(nesting_depth(r#"{"a": [1, {"b": "[[[["}]}"#), 3);
        assert_eq!(nesting_depth("1"), 0);
    }
}
