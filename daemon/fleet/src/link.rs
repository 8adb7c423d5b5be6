//! The MQTT 5 client: one connection to the broker, kept up with jittered backoff.
//!
//! The event loop task does nothing but poll rumqttc and forward: CONNACKs and errors into a
//! `watch` of the [`LinkState`], publishes on the commands topic into a bounded channel (full:
//! dropped, counted). It never publishes and never waits on anything but the network and the
//! backoff timer, so rumqttc's request queue is always being drained (rumqttc #1025).

use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{LastWill, Packet, Publish, PublishProperties};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::topics::Topics;
use roomd_base::backoff::Backoff;

/// Payload of the retained presence while the room is connected.
pub const ONLINE: &str = "online";
/// Payload of the retained presence the broker publishes as the room's last will.
pub const OFFLINE: &str = "offline";

/// How long the broker keeps the room's session (its subscription and queued QoS 1 commands)
/// after the connection is lost, in seconds.
pub const SESSION_EXPIRY_S: u32 = 300;

/// Commands waiting for the command task; more are dropped (and counted), not queued.
const INCOMING_QUEUE: usize = 16;

/// rumqttc's request queue (publishes, subscribes waiting for the event loop).
const REQUEST_QUEUE: usize = 64;

/// What a [`Link`] needs to connect.
#[derive(Clone)]
pub struct LinkSettings {
    /// The room's id: its topics and its MQTT client id.
    pub room_id: String,
    /// The broker's host name or IP address (verified against its certificate).
    pub host: String,
    /// The broker's TLS port.
    pub port: u16,
    /// MQTT keep-alive.
    pub keepalive: Duration,
    /// Reconnect delays.
    pub backoff_min: Duration,
    /// The longest reconnect delay.
    pub backoff_max: Duration,
    /// The largest packet the broker may send the room.
    pub max_packet_bytes: u32,
    /// TLS: the broker's CAs and the room's client certificate.
    pub tls: Arc<rustls::ClientConfig>,
}

/// Where the connection stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkState {
    /// A CONNACK was received and the connection not lost since.
    pub connected: bool,
    /// CONNACKs received so far: changes on every (re)connection.
    pub connects: u64,
    /// Why the last connection attempt failed or the connection ended; empty when none did.
    pub last_error: String,
    /// Commands dropped because the command task was behind.
    pub dropped_commands: u64,
}

/// A room's MQTT connection: a client to publish through (never from the event loop task), the
/// connection's state, and the commands that arrived.
pub struct Link {
    /// Publishes and subscribes; use the `try_` methods, which never wait.
    pub client: AsyncClient,
    /// The room's topics.
    pub topics: Topics,
    /// Where the connection stands; changes on every CONNACK and every loss.
    pub state: watch::Receiver<LinkState>,
    /// Publishes that arrived on the commands topic.
    pub commands: mpsc::Receiver<Publish>,
    /// The event loop task; ends when every client is dropped.
    pub task: JoinHandle<()>,
}

impl Link {
    /// Starts connecting (in the background) and returns at once.
    pub fn connect(settings: LinkSettings) -> Link {
        let topics = Topics::for_room(&settings.room_id);
        let mut options = MqttOptions::new(&settings.room_id, &settings.host, settings.port);
        options
            .set_keep_alive(settings.keepalive)
            // The broker keeps the subscription across short losses; every CONNACK subscribes
            // again anyway, for brokers that lost the session (restart without persistence).
            .set_clean_start(false)
            .set_session_expiry_interval(Some(SESSION_EXPIRY_S))
            .set_max_packet_size(Some(settings.max_packet_bytes))
            .set_request_channel_capacity(REQUEST_QUEUE)
            .set_connection_timeout(10)
            .set_last_will(LastWill::new(
                topics.presence.clone(),
                OFFLINE,
                QoS::AtLeastOnce,
                true,
                None,
            ))
            .set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                settings.tls.clone(),
            )));
        let (client, eventloop) = AsyncClient::new(options, REQUEST_QUEUE);
        let (state_tx, state) = watch::channel(LinkState::default());
        let (commands_tx, commands) = mpsc::channel(INCOMING_QUEUE);
        let backoff = Backoff::new(settings.backoff_min, settings.backoff_max);
        let task = tokio::spawn(drive(
            eventloop,
            topics.commands.clone(),
            commands_tx,
            state_tx,
            backoff,
        ));
        Link {
            client,
            topics,
            state,
            commands,
            task,
        }
    }
}

impl Link {
    /// What every new connection needs: subscribe to the commands topic again (the broker may
    /// have lost the session, rumqttc #250) and say `online` (retained). Never waits; `false`
    /// when rumqttc's queue is full (try again shortly).
    pub fn announce(&self) -> bool {
        announce(&self.client, &self.topics)
    }
}

/// [`Link::announce`] for tasks that hold only the client and the topics.
pub(crate) fn announce(client: &AsyncClient, topics: &Topics) -> bool {
    client
        .try_subscribe(&topics.commands, QoS::AtLeastOnce)
        .is_ok()
        && client
            .try_publish_with_properties(
                &topics.presence,
                QoS::AtLeastOnce,
                true,
                ONLINE,
                stamped(),
            )
            .is_ok()
}

/// The MQTT 5 user property that carries when a retained message was published: the broker
/// keeps it with the message, so a fleet manager that reads the retained presence and status
/// later knows when the room last said something (its `last_seen`).
pub const PUBLISHED_AT: &str = "published_at";

/// Properties with [`PUBLISHED_AT`] set to now (RFC 3339, UTC, the room's clock).
pub(crate) fn stamped() -> PublishProperties {
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    PublishProperties {
        user_properties: vec![(PUBLISHED_AT.to_owned(), now)],
        ..Default::default()
    }
}

async fn drive(
    mut eventloop: EventLoop,
    commands_topic: String,
    commands: mpsc::Sender<Publish>,
    state: watch::Sender<LinkState>,
    mut backoff: Backoff,
) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                state.send_modify(|s| {
                    s.connected = true;
                    s.connects += 1;
                });
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                if publish.topic.as_ref() == commands_topic.as_bytes()
                    && commands.try_send(publish).is_err()
                {
                    state.send_modify(|s| s.dropped_commands += 1);
                }
            }
            Ok(Event::Incoming(Packet::Disconnect(disconnect))) => {
                let reason = format!("the broker disconnected: {:?}", disconnect.reason_code);
                state.send_modify(|s| {
                    s.connected = false;
                    s.last_error = reason;
                });
            }
            Ok(_) => {}
            Err(ConnectionError::RequestsDone) => return,
            Err(e) => {
                let delay = backoff.next_delay();
                let reason = e.to_string();
                tracing::debug!(
                    "fleet: connection lost or refused ({reason}); retrying in {delay:?}"
                );
                state.send_modify(|s| {
                    s.connected = false;
                    s.last_error = reason;
                });
                tokio::time::sleep(delay).await;
            }
        }
    }
}
