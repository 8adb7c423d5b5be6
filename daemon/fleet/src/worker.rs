//! The fleet worker: a [`Link`] tied to the room core. Three tasks besides the event loop: the
//! publisher (presence, status, deltas, events; re-subscribes on every CONNACK), the command
//! task (one request at a time through the [`Gate`]; a firmware update answers from a task of
//! its own) and the reporter (`status.fleet`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use crate::commands::{Answer, Gate, TokenBucket};
use crate::link::{Link, LinkSettings};
use crate::tls::{client_config, common_name};
use roomd_api::audit::AuditLog;
use roomd_core::{Notification, RoomHandle};
use roomd_identity::tls::ServedCertificate;
use roomd_model::Role;
use roomd_model::config::{FleetConfig, check_fleet_broker, check_fleet_room_id};
use roomd_model::fleet::FleetStatus;

/// What the fleet worker needs from roomd.
pub struct FleetSetup {
    /// The room core.
    pub room: RoomHandle,
    /// The update worker, for the fleet's `{"update": {"url": …}}`.
    pub updates: roomd_update::UpdateHandle,
    /// The audit log every fleet request is written to.
    pub audit: Arc<AuditLog>,
    /// The device certificate and key (the API's), presented to the broker.
    pub certificate: Arc<ServedCertificate>,
    /// `[fleet]`.
    pub config: FleetConfig,
}

/// Starts the fleet channel when `fleet.broker` is set; `None` otherwise. The task runs until
/// aborted; a setup that cannot work (no CA, no room id) says why in `status.fleet.last_error`.
pub fn start(setup: FleetSetup) -> Option<JoinHandle<()>> {
    if setup.config.broker.is_empty() {
        return None;
    }
    Some(tokio::spawn(run(setup)))
}

async fn run(setup: FleetSetup) {
    let FleetSetup {
        room,
        updates,
        audit,
        certificate,
        config,
    } = setup;
    let room_id = match config.room_id.as_str() {
        "" => common_name(&certificate).unwrap_or_default(),
        id => id.to_owned(),
    };
    let mut status = FleetStatus::starting(&config.broker, &room_id);
    let settings = match settings_of(&config, &room_id, certificate) {
        Ok(settings) => settings,
        Err(e) => {
            tracing::error!("fleet channel off: {e}");
            status.last_error = e;
            let _ = room.fleet_report(status).await;
            return;
        }
    };
    let _ = room.fleet_report(status.clone()).await;
    let role = config.role.parse().unwrap_or(Role::RoomControl);
    tracing::info!(
        "fleet: connecting to {} as {room_id} (commands run as {role})",
        config.broker
    );
    let Link {
        client,
        topics,
        state,
        commands,
        task,
    } = Link::connect(settings.clone());
    let gate = Gate {
        room: room.clone(),
        updates,
        audit,
        role,
        actor: format!("fleet:{}", settings.host),
        topic: topics.commands.clone(),
        max_payload: config.max_payload_bytes as usize,
        bucket: TokenBucket::per_minute(config.commands_per_minute),
    };
    let reporter = tokio::spawn(report(room.clone(), state.clone(), status));
    let commander = tokio::spawn(take_commands(
        gate,
        commands,
        client.clone(),
        topics.replies_prefix.clone(),
    ));
    let publisher = tokio::spawn(publish(
        room,
        client,
        topics,
        state,
        Duration::from_millis(u64::from(config.status_interval_ms)),
    ));
    // Runs until roomd aborts it; then the tasks go with it (the broker publishes the will).
    struct AbortOnDrop(Vec<tokio::task::AbortHandle>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            for t in &self.0 {
                t.abort();
            }
        }
    }
    let _tasks = AbortOnDrop(vec![
        reporter.abort_handle(),
        commander.abort_handle(),
        publisher.abort_handle(),
        task.abort_handle(),
    ]);
    let _ = task.await;
}

fn settings_of(
    config: &FleetConfig,
    room_id: &str,
    certificate: Arc<ServedCertificate>,
) -> Result<LinkSettings, String> {
    let (host, port) = check_fleet_broker(&config.broker)?;
    check_fleet_room_id(room_id).map_err(|e| {
        format!(
            "fleet.room_id is empty and the device certificate's common name {e}; set fleet.room_id"
        )
    })?;
    if config.ca_file.is_empty() {
        return Err("fleet.ca_file is not set: the broker's certificate cannot be verified".into());
    }
    let ca = std::fs::read(&config.ca_file)
        .map_err(|e| format!("fleet.ca_file {}: {e}", config.ca_file))?;
    let tls = client_config(&ca, certificate).map_err(|e| e.to_string())?;
    Ok(LinkSettings {
        room_id: room_id.to_owned(),
        host,
        port,
        keepalive: Duration::from_secs(u64::from(config.keepalive_s)),
        backoff_min: Duration::from_millis(u64::from(config.backoff_min_ms)),
        backoff_max: Duration::from_millis(u64::from(config.backoff_max_ms)),
        // The payload cap plus room for the topic and properties.
        max_packet_bytes: config.max_payload_bytes.saturating_add(4096),
        tls: Arc::new(tls),
    })
}

/// `status.fleet` follows the link's state.
async fn report(
    room: RoomHandle,
    mut state: tokio::sync::watch::Receiver<crate::LinkState>,
    mut status: FleetStatus,
) {
    loop {
        {
            let s = state.borrow_and_update();
            status.connected = s.connected;
            status.connects = s.connects;
            status.last_error = s.last_error.clone();
        }
        if room.fleet_report(status.clone()).await.is_err() || state.changed().await.is_err() {
            return;
        }
    }
}

/// One request at a time; the reply goes to the request's response topic (which must be under
/// `roomd/<id>/replies/`) with its correlation data.
async fn take_commands(
    mut gate: Gate,
    mut commands: tokio::sync::mpsc::Receiver<rumqttc::v5::mqttbytes::v5::Publish>,
    client: rumqttc::v5::AsyncClient,
    replies_prefix: String,
) {
    while let Some(request) = commands.recv().await {
        let properties = request.properties.clone().unwrap_or_default();
        let asked = properties.response_topic.is_some();
        let response_topic = properties
            .response_topic
            .filter(|t| t.starts_with(&replies_prefix) && !t.contains(['+', '#']));
        if asked && response_topic.is_none() {
            tracing::warn!(
                "fleet: ignoring a request whose response topic is not under {replies_prefix}"
            );
            continue;
        }
        // Only the correlation data goes back, with the reply's own content type.
        let correlation = PublishProperties {
            correlation_data: properties.correlation_data,
            content_type: Some("application/json".into()),
            ..Default::default()
        };
        match gate.handle(&request.payload, request.retain).await {
            Answer::Now(reply) => send_reply(&client, response_topic, correlation, &reply),
            Answer::Later(reply) => {
                // An update: minutes of download and install. The command task goes on (the
                // update worker refuses a second update itself); the reply follows.
                let client = client.clone();
                tokio::spawn(async move {
                    let reply = reply.await;
                    send_reply(&client, response_topic, correlation, &reply);
                });
            }
        }
    }
}

fn send_reply(
    client: &rumqttc::v5::AsyncClient,
    topic: Option<String>,
    props: PublishProperties,
    reply: &Value,
) {
    let Some(topic) = topic else { return };
    if let Err(e) =
        client.try_publish_with_properties(topic, QoS::AtLeastOnce, false, reply.to_string(), props)
    {
        tracing::warn!("fleet: reply not sent: {e}");
    }
}

/// Presence, status and events. Nothing here waits on the client's queue: a full queue skips
/// this round (status stays due), an event while disconnected is dropped (the retained status
/// carries the state).
async fn publish(
    room: RoomHandle,
    client: rumqttc::v5::AsyncClient,
    topics: crate::Topics,
    mut state: tokio::sync::watch::Receiver<crate::LinkState>,
    interval: Duration,
) {
    let mut notifications = room.subscribe();
    let mut changes: BTreeMap<String, Value> = BTreeMap::new();
    let mut status_due = true;
    let mut announced = 0u64;
    let mut last_status: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            notification = notifications.recv() => match notification {
                Ok(Notification::StatusChanged { path, value }) => {
                    changes.insert(path, value);
                    status_due = true;
                }
                Ok(Notification::Event(event)) => {
                    if state.borrow().connected
                        && let Ok(payload) = serde_json::to_vec(&event)
                    {
                        let _ = client.try_publish(&topics.events, QoS::AtLeastOnce, false, payload);
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    // Deltas were missed: the full status says it all.
                    changes.clear();
                    status_due = true;
                }
                Err(RecvError::Closed) => return,
            },
            _ = tick.tick() => {}
        }
        let (connected, connects) = {
            let s = state.borrow();
            (s.connected, s.connects)
        };
        if !connected {
            continue;
        }
        if connects != announced {
            // A new connection: subscribe again (the broker may have lost the session), say
            // online, and send the whole status.
            if crate::link::announce(&client, &topics) {
                announced = connects;
                status_due = true;
                changes.clear();
            }
        }
        let now = tokio::time::Instant::now();
        if status_due && last_status.is_none_or(|at| now.duration_since(at) >= interval) {
            let tree = room.status().tree.clone();
            if client
                .try_publish_with_properties(
                    &topics.status,
                    QoS::AtLeastOnce,
                    true,
                    tree.to_string(),
                    crate::link::stamped(),
                )
                .is_ok()
            {
                status_due = false;
                last_status = Some(now);
                if !changes.is_empty() {
                    let delta = json!({ "changes": std::mem::take(&mut changes) });
                    let _ = client.try_publish(
                        &topics.delta,
                        QoS::AtLeastOnce,
                        false,
                        delta.to_string(),
                    );
                }
            }
        }
    }
}
