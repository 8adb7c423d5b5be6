//! Commands and configuration patches from the fleet channel, through the API's own pieces: the
//! typed [`RoomCommand::parse`], the permission table ([`command_permission`], [`allows`]), the
//! configuration's file-only and admin-only keys, and the audit log, with the role from
//! `fleet.role`. A firmware update ([`crate::update`]) is answered later, from a task of its own.

use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use roomd_api::BundleUrl;
use roomd_api::accounts::{Permission, allows};
use roomd_api::audit::{AuditLog, NewAuditRecord};
use roomd_api::{ApiError, command_permission};
use roomd_core::{RoomCommand, RoomHandle};
use roomd_model::Role;
use roomd_model::config::ADMIN_ONLY_KEYS;
use roomd_update::UpdateHandle;

use crate::update::UpdateRequest;

/// What the audit log records as the "method" of a fleet request.
const AUDIT_METHOD: &str = "MQTT";

/// A request on `roomd/<id>/commands`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetRequest {
    command: Option<String>,
    args: Option<Value>,
    config_patch: Option<Value>,
    update: Option<UpdateRequest>,
}

/// Takes fleet requests one at a time: checks, runs, audits.
pub(crate) struct Gate {
    pub(crate) room: RoomHandle,
    /// The update worker, for `{"update": {"url": …}}`.
    pub(crate) updates: UpdateHandle,
    pub(crate) audit: Arc<AuditLog>,
    pub(crate) role: Role,
    /// `fleet:<broker host>`, the actor in the audit log.
    pub(crate) actor: String,
    /// The commands topic, the "path" in the audit log.
    pub(crate) topic: String,
    pub(crate) max_payload: usize,
    pub(crate) bucket: TokenBucket,
}

/// The reply to a request: now, or (a firmware update) once the future has run.
pub(crate) enum Answer {
    Now(Value),
    Later(Pin<Box<dyn Future<Output = Value> + Send>>),
}

/// What a request that passed its checks does.
enum Ran {
    /// Done: the reply is `{"ok": true}`.
    Done,
    /// A firmware update from this URL, still to be downloaded and installed.
    Update(BundleUrl),
}

impl Gate {
    /// Runs one request and returns the reply (`{"ok": true}` or `{"error", "status"}`).
    pub(crate) async fn handle(&mut self, payload: &[u8], retained: bool) -> Answer {
        let (outcome, detail) = self.run(payload, retained).await;
        match outcome {
            Ok(Ran::Done) => {
                self.record(&Ok(()), detail).await;
                Answer::Now(json!({"ok": true}))
            }
            Err(e) => {
                self.record(&Err(e.clone()), detail).await;
                Answer::Now(e.reply())
            }
            Ok(Ran::Update(url)) => {
                // Audited once it ended, with its outcome, as the API audits at its answer.
                let recorder = self.recorder();
                let updates = self.updates.clone();
                let config = self.room.config();
                Answer::Later(Box::pin(async move {
                    let outcome = crate::update::install(updates, config, url)
                        .await
                        .map_err(Refusal::from);
                    recorder
                        .record(&outcome.as_ref().map(|_| ()).map_err(Clone::clone), detail)
                        .await;
                    match outcome {
                        Ok(status) => json!({"ok": true, "status": status}),
                        Err(e) => e.reply(),
                    }
                }))
            }
        }
    }

    async fn run(&mut self, payload: &[u8], retained: bool) -> (Result<Ran, Refusal>, String) {
        if !self.bucket.take() {
            let message = format!(
                "more than {} fleet requests per minute (fleet.commands_per_minute); try again \
                 in {} s",
                self.bucket.capacity,
                self.bucket.refill_interval().as_secs()
            );
            return (
                Err(Refusal {
                    status: 429,
                    code: "too_many_requests",
                    message,
                }),
                "rate limited".into(),
            );
        }
        if payload.len() > self.max_payload {
            let message = format!(
                "the request has {} bytes, more than fleet.max_payload_bytes ({})",
                payload.len(),
                self.max_payload
            );
            return (
                Err(Refusal {
                    status: 413,
                    code: "payload_too_large",
                    message,
                }),
                "too large".into(),
            );
        }
        if retained {
            // A retained command would run again at every reconnect of the room.
            return (
                Err(ApiError::BadRequest(
                    "retained commands are refused: send commands with retain off".into(),
                )
                .into()),
                "retained".into(),
            );
        }
        let request: FleetRequest = match serde_json::from_slice(payload) {
            Ok(r) => r,
            Err(e) => {
                return (
                    Err(ApiError::BadRequest(format!(
                        "a fleet request is {{\"command\": name, \"args\": {{…}}}} or \
                         {{\"config_patch\": {{…}}}}: {e}"
                    ))
                    .into()),
                    "malformed".into(),
                );
            }
        };
        if let Err(e) = self.auditable().await {
            return (Err(e.into()), "not auditable".into());
        }
        match request {
            FleetRequest {
                command: Some(name),
                args,
                config_patch: None,
                update: None,
            } => {
                let detail = format!("command {}", name.chars().take(64).collect::<String>());
                let outcome = self.command(&name, args.unwrap_or(json!({}))).await;
                (outcome.map(|()| Ran::Done).map_err(Refusal::from), detail)
            }
            FleetRequest {
                command: None,
                args: None,
                config_patch: Some(patch),
                update: None,
            } => {
                let (outcome, detail) = self.config_patch(patch).await;
                (outcome.map(|()| Ran::Done).map_err(Refusal::from), detail)
            }
            FleetRequest {
                command: None,
                args: None,
                config_patch: None,
                update: Some(update),
            } => match self.update(&update.url) {
                Ok(url) => {
                    let detail = crate::update::audit_detail(&url);
                    (Ok(Ran::Update(url)), detail)
                }
                Err(e) => (Err(e.into()), "update".into()),
            },
            _ => (
                Err(ApiError::BadRequest(
                    "a fleet request carries one of \"command\" (with \"args\"), \
                     \"config_patch\" or \"update\""
                        .into(),
                )
                .into()),
                "malformed".into(),
            ),
        }
    }

    /// As `POST /api/v1/update` with `{"url": …}`: the FirmwareUpdate permission, then the URL.
    fn update(&self, url: &str) -> Result<BundleUrl, ApiError> {
        if !allows(self.role, Permission::FirmwareUpdate) {
            return Err(ApiError::Forbidden(format!(
                "a firmware update needs the FirmwareUpdate permission, which the fleet role {} \
                 does not have",
                self.role
            )));
        }
        BundleUrl::parse(url)
    }

    /// As `POST /api/v1/commands/{name}` with the fleet role.
    async fn command(&self, name: &str, args: Value) -> Result<(), ApiError> {
        let mut command = RoomCommand::parse(name, &args)?;
        let needed = command_permission(name);
        if !allows(self.role, Permission::RoomControl) || !allows(self.role, needed) {
            return Err(ApiError::Forbidden(format!(
                "the command {name} needs the {needed:?} permission, which the fleet role {} \
                 does not have",
                self.role
            )));
        }
        if let Some(by) = command.requester_mut() {
            *by = self.actor.clone();
        }
        self.room.execute(command).await?;
        Ok(())
    }

    /// As `PATCH /api/v1/config` with the fleet role; secret settings only through the API.
    async fn config_patch(&self, mut patch: Value) -> (Result<(), ApiError>, String) {
        let detail = "config patch".to_owned();
        if !allows(self.role, Permission::ConfigWrite) {
            return (
                Err(ApiError::Forbidden(format!(
                    "changing the configuration needs the ConfigWrite permission, which the \
                     fleet role {} does not have",
                    self.role
                ))),
                detail,
            );
        }
        if !patch.is_object() {
            return (
                Err(ApiError::InvalidConfig {
                    field: None,
                    message: "a configuration patch must be a JSON object".into(),
                }),
                detail,
            );
        }
        let secrets = roomd_model::config::take_from_patch(&mut patch);
        if !secrets.new.is_empty() || !secrets.cleared.is_empty() {
            return (
                Err(ApiError::Forbidden(
                    "secret settings are not taken over the fleet channel; set them through \
                     the room's API"
                        .into(),
                )),
                detail,
            );
        }
        let before = self.room.config();
        let after = match before.apply_merge_patch(&patch) {
            Ok(after) => after,
            Err(e) => return (Err(e.into()), detail),
        };
        if self.role != Role::Admin
            && let Some(key) = before
                .changed_keys(&after)
                .into_iter()
                .find(|key| ADMIN_ONLY_KEYS.contains(&key.as_str()))
        {
            return (
                Err(ApiError::Forbidden(format!(
                    "only an admin may change {key}: it decides how hard this device is to get \
                     into"
                ))),
                detail,
            );
        }
        match self.room.patch_config(patch).await {
            Ok(after) => {
                let keys = before.changed_keys(&after);
                (Ok(()), format!("config patch: changed {}", keys.join(", ")))
            }
            Err(e) => (Err(e.into()), detail),
        }
    }

    async fn auditable(&self) -> Result<(), ApiError> {
        let audit = self.audit.clone();
        match tokio::task::spawn_blocking(move || audit.check_writable()).await {
            Ok(Ok(())) => Ok(()),
            _ => {
                tracing::error!("refusing a fleet request that cannot be audited");
                Err(ApiError::Unavailable(
                    "the audit log cannot record this change (its disk is full or read-only), \
                     so the change was refused and nothing was changed"
                        .into(),
                ))
            }
        }
    }

    fn recorder(&self) -> Recorder {
        Recorder {
            audit: self.audit.clone(),
            actor: self.actor.clone(),
            role: self.role,
            topic: self.topic.clone(),
        }
    }

    async fn record(&self, outcome: &Result<(), Refusal>, detail: String) {
        self.recorder().record(outcome, detail).await;
    }
}

/// Writes a fleet request's audit record; its own value, so that a request answered later (an
/// update) is recorded from its own task.
struct Recorder {
    audit: Arc<AuditLog>,
    actor: String,
    role: Role,
    topic: String,
}

impl Recorder {
    async fn record(&self, outcome: &Result<(), Refusal>, detail: String) {
        let record = NewAuditRecord {
            actor: self.actor.clone(),
            role: Some(self.role),
            source: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            method: AUDIT_METHOD.to_owned(),
            path: self.topic.clone(),
            status: match outcome {
                Ok(()) => 200,
                Err(e) => e.status,
            },
            detail: Some(detail),
        };
        let audit = self.audit.clone();
        match tokio::task::spawn_blocking(move || audit.append(record)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!("audit log write failed: {e}"),
            Err(e) => tracing::error!("audit log task failed: {e}"),
        }
    }
}

/// Why a request was refused, as the reply says it: the API's status and error code.
#[derive(Clone)]
pub(crate) struct Refusal {
    status: u16,
    code: &'static str,
    message: String,
}

impl Refusal {
    fn reply(&self) -> Value {
        json!({"error": self.message, "status": self.status, "code": self.code})
    }
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Refusal {
        Refusal {
            status: e.http_status(),
            code: e.code(),
            message: e.to_string(),
        }
    }
}

/// At most `per_minute` requests per minute, in bursts of up to `per_minute`.
pub(crate) struct TokenBucket {
    capacity: f64,
    tokens: f64,
    per_second: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn per_minute(per_minute: u32) -> TokenBucket {
        let capacity = f64::from(per_minute.max(1));
        TokenBucket {
            capacity,
            tokens: capacity,
            per_second: capacity / 60.0,
            last: Instant::now(),
        }
    }

    pub(crate) fn take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn refill_interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.per_second).max(Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_refuses() {
        let mut bucket = TokenBucket::per_minute(3);
        assert!(bucket.take() && bucket.take() && bucket.take());
        assert!(!bucket.take());
    }
}
