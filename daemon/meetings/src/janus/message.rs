//! Strict reading of Janus' JSON envelope: every field we use is checked for presence and type,
//! so a server that sends something else gets a message naming the field, never a panic.

use serde_json::{Map, Value};

use super::error::JanusError;

/// A session description carried next to a Janus message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jsep {
    /// `offer` or `answer`.
    pub kind: String,
    /// The SDP text.
    pub sdp: String,
}

/// One message from Janus (a reply, or an event from the long poll).
#[derive(Debug, Clone)]
pub(super) struct Envelope {
    /// The `janus` field: `success`, `ack`, `event`, `error`, `webrtcup`, `media`, ...
    pub kind: String,
    pub transaction: Option<String>,
    /// The handle the message is about (`sender`).
    pub sender: Option<u64>,
    /// `data` of `success` replies (session and handle ids).
    pub data: Option<Map<String, Value>>,
    /// `error` of `error` messages: code and reason.
    pub error: Option<(i64, String)>,
    /// `plugindata.data`, the plugin's own message.
    pub plugin_data: Option<Map<String, Value>>,
    pub jsep: Option<Jsep>,
    /// The whole message, for fields specific to one kind (`media`, `slowlink`, ...).
    pub raw: Map<String, Value>,
}

/// Parses a reply body (one JSON object).
pub(super) fn parse_body(url: &str, body: &str) -> Result<Envelope, JanusError> {
    let value = parse_json(url, body)?;
    parse_value(url, value)
}

/// Parses a long-poll body: one object, or an array of them.
pub(super) fn parse_poll_body(
    url: &str,
    body: &str,
) -> Result<Vec<Result<Envelope, JanusError>>, JanusError> {
    match parse_json(url, body)? {
        Value::Array(items) => Ok(items.into_iter().map(|v| parse_value(url, v)).collect()),
        other => Ok(vec![parse_value(url, other)]),
    }
}

fn parse_json(url: &str, body: &str) -> Result<Value, JanusError> {
    serde_json::from_str(body).map_err(|e| JanusError::NotJson {
        url: url.to_owned(),
        reason: e.to_string(),
    })
}

/// Reads one message object.
pub(super) fn parse_value(url: &str, value: Value) -> Result<Envelope, JanusError> {
    let malformed = |problem: String| JanusError::Malformed {
        url: url.to_owned(),
        problem,
    };
    let Value::Object(raw) = value else {
        return Err(malformed(format!(
            "expected a JSON object, got {}",
            kind_of(&value)
        )));
    };
    let kind = match raw.get("janus") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(malformed(format!(
                "\"janus\" is {}, not a string",
                kind_of(other)
            )));
        }
        None => return Err(malformed("the \"janus\" field is missing".to_owned())),
    };
    let transaction = optional_string(&raw, "transaction").map_err(&malformed)?;
    let sender = optional_u64(&raw, "sender").map_err(&malformed)?;
    let data = optional_object(&raw, "data").map_err(&malformed)?;
    let error = match optional_object(&raw, "error").map_err(&malformed)? {
        None => None,
        Some(e) => {
            let code = e.get("code").and_then(Value::as_i64).ok_or_else(|| {
                malformed("\"error.code\" is missing or not an integer".to_owned())
            })?;
            let reason = e
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            Some((code, reason))
        }
    };
    let plugin_data = match optional_object(&raw, "plugindata").map_err(&malformed)? {
        None => None,
        Some(p) => match p.get("data") {
            Some(Value::Object(d)) => Some(d.clone()),
            _ => {
                return Err(malformed(
                    "\"plugindata.data\" is missing or not an object".to_owned(),
                ));
            }
        },
    };
    let jsep = match optional_object(&raw, "jsep").map_err(&malformed)? {
        None => None,
        Some(j) => {
            let kind = j.get("type").and_then(Value::as_str);
            let sdp = j.get("sdp").and_then(Value::as_str);
            match (kind, sdp) {
                (Some(kind), Some(sdp)) => Some(Jsep {
                    kind: kind.to_owned(),
                    sdp: sdp.to_owned(),
                }),
                _ => {
                    return Err(malformed(
                        "\"jsep\" lacks a string \"type\" or \"sdp\"".to_owned(),
                    ));
                }
            }
        }
    };
    Ok(Envelope {
        kind,
        transaction,
        sender,
        data,
        error,
        plugin_data,
        jsep,
        raw,
    })
}

pub(super) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn optional_string(
    map: &Map<String, Value>,
    key: &str,
) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("\"{key}\" is {}, not a string", kind_of(other))),
    }
}

pub(super) fn optional_u64(map: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("\"{key}\" is {}, not an unsigned integer", kind_of(v))),
    }
}

pub(super) fn optional_object(
    map: &Map<String, Value>,
    key: &str,
) -> Result<Option<Map<String, Value>>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o.clone())),
        Some(other) => Err(format!("\"{key}\" is {}, not an object", kind_of(other))),
    }
}

pub(super) fn required_u64(map: &Map<String, Value>, key: &str) -> Result<u64, String> {
    optional_u64(map, key)?.ok_or_else(|| format!("\"{key}\" is missing"))
}
