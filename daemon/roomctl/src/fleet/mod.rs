//! `roomctl fleet`: the rooms of a fleet through the customer's MQTT 5 broker (docs/fleet.md),
//! with the fleet manager's own client certificate: list them from their retained presence and
//! status, and send a command or configuration patch to many, each answered on a response topic
//! with the room id as correlation data.
//!
//! - this file: the broker session, collecting the retained state, selecting rooms, sending;
//! - `inventory`: the fields of a room and `--match` filters;
//! - `format`: table, JSON and CSV output;
//! - `rollout`: `fleet update`, a firmware update in waves.

mod format;
mod inventory;
mod rollout;

pub(crate) use format::Format;
pub(crate) use inventory::Filter;
pub(crate) use rollout::{UpdatePlan, Waves, update};

use inventory::{FIELDS, Room, Seen};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, PublishProperties};
use rumqttc::v5::{Client, Event, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

/// How roomctl reaches the broker.
pub(crate) struct Broker {
    pub(crate) url: String,
    pub(crate) ca: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

/// A connection; events arrive on `events` from a thread of their own, so that publishing here
/// never waits for a loop that nobody polls.
struct Session {
    client: Client,
    events: mpsc::Receiver<Event>,
    id: String,
}

/// Which rooms an action is for: `--room` / `--rooms` (none: every room, for actions every
/// online room), narrowed by every `--match`.
pub(crate) struct Selection {
    pub(crate) rooms: Vec<String>,
    pub(crate) filters: Vec<Filter>,
    /// How long `collect` waits without a new room.
    pub(crate) quiet: Duration,
}

/// The user property roomd stamps its retained presence and status with (`roomd_fleet::PUBLISHED_AT`;
/// roomctl does not link the daemon's crates).
const PUBLISHED_AT: &str = "published_at";

impl Session {
    /// The next message published to us, or `None` once `deadline` passed.
    fn next_publish(&self, deadline: Instant) -> Option<Publish> {
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.events.recv_timeout(left) {
                Ok(Event::Incoming(Packet::Publish(p))) => return Some(p),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Subscribes to the replies for this session and waits for the broker's SUBACK.
    fn subscribe_replies(&self) -> anyhow::Result<()> {
        self.client
            .subscribe(format!("roomd/+/replies/{}", self.id), QoS::AtLeastOnce)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self
                .events
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(Event::Incoming(Packet::SubAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(_) => bail!("the broker did not confirm the subscription"),
            }
        }
    }

    /// Sends `request` to `room`, answered on this session's reply topic with the room id as
    /// correlation data.
    fn request(&self, room: &str, request: &Value) -> anyhow::Result<()> {
        let properties = PublishProperties {
            response_topic: Some(format!("roomd/{room}/replies/{}", self.id)),
            correlation_data: Some(room.to_owned().into_bytes().into()),
            content_type: Some("application/json".into()),
            ..Default::default()
        };
        self.client.publish_with_properties(
            format!("roomd/{room}/commands"),
            QoS::AtLeastOnce,
            false,
            request.to_string(),
            properties,
        )?;
        Ok(())
    }
}

/// The room a reply is from (its correlation data), when `p` is a reply to this session.
fn reply_of(session: &Session, p: &Publish) -> Option<(String, Value)> {
    let topic = String::from_utf8_lossy(&p.topic);
    if !topic.ends_with(&format!("/replies/{}", session.id)) {
        return None;
    }
    let room = p
        .properties
        .as_ref()
        .and_then(|props| props.correlation_data.as_ref())
        .map(|c| String::from_utf8_lossy(c).into_owned())?;
    let reply = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
    Some((room, reply))
}

/// Takes a retained presence or status publication into `rooms`; returns the room it was for.
fn take_state(rooms: &mut BTreeMap<String, Seen>, p: &Publish) -> Option<String> {
    let topic = String::from_utf8_lossy(&p.topic).into_owned();
    let parts: Vec<&str> = topic.split('/').collect();
    let [_, room, kind] = parts.as_slice() else {
        return None;
    };
    let at = p.properties.as_ref().and_then(|props| {
        props
            .user_properties
            .iter()
            .find(|(k, _)| k == PUBLISHED_AT)
            .map(|(_, v)| v.clone())
    });
    let entry = rooms.entry((*room).to_owned()).or_default();
    match *kind {
        "presence" => {
            entry.presence = String::from_utf8_lossy(&p.payload).into_owned();
            entry.presence_at = at.or(entry.presence_at.take());
        }
        "status" => {
            entry.status = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
            entry.status_at = at.or(entry.status_at.take());
        }
        _ => return None,
    }
    Some((*room).to_owned())
}

/// Now, as RFC 3339 UTC: the last-seen time of rooms that are online.
fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The inventory: every room `collect` found, as [`Room`]s, narrowed by `selection`.
fn inventory(rooms: BTreeMap<String, Seen>, selection: &Selection, online_only: bool) -> Vec<Room> {
    let now = now_rfc3339();
    let named = !selection.rooms.is_empty();
    let mut out: Vec<Room> = rooms
        .into_iter()
        .filter(|(id, _)| !named || selection.rooms.contains(id))
        .map(|(id, seen)| Room::new(&id, seen, &now))
        .filter(|room| named || !online_only || room.online)
        .filter(|room| selection.filters.iter().all(|f| f.matches(room)))
        .collect();
    // A named room the broker knows nothing of is still a target (and listed as unknown).
    for id in &selection.rooms {
        if !out.iter().any(|r| &r.id == id) && selection.filters.is_empty() {
            out.push(Room::new(id, Seen::default(), &now));
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn connect(broker: &Broker) -> anyhow::Result<Session> {
    let rest = broker
        .url
        .strip_prefix("mqtts://")
        .ok_or_else(|| anyhow!("the broker must be mqtts://host[:port], not {}", broker.url))?;
    let port_of = |p: &str| -> anyhow::Result<u16> {
        p.parse()
            .with_context(|| format!("the broker port in {} is not a number", broker.url))
    };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| anyhow!("no ']' in {}", broker.url))?;
        let port = match after.strip_prefix(':') {
            Some(p) => port_of(p)?,
            None => 8883,
        };
        (host.to_owned(), port)
    } else {
        match rest.rsplit_once(':') {
            Some((host, p)) => (host.to_owned(), port_of(p)?),
            None => (rest.to_owned(), 8883),
        }
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&read(&broker.ca)?) {
        roots.add(cert.context("CA file")?).context("CA file")?;
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(&broker.cert)?)
        .collect::<Result<_, _>>()
        .context("certificate file")?;
    let key = PrivateKeyDer::from_pem_slice(&read(&broker.key)?).context("key file")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    let mut nonce = [0u8; 6];
    roomd_base::random::fill(&mut nonce);
    let id = format!(
        "roomctl-{}",
        nonce.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let mut options = MqttOptions::new(&id, host, port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls),
        )));
    let (client, mut connection) = Client::new(options, 256);
    let (tx, events) = mpsc::channel();
    std::thread::spawn(move || {
        for event in connection.iter() {
            match event {
                Ok(event) => {
                    if tx.send(event).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    eprintln!("roomctl: broker: {e}");
                    return;
                }
            }
        }
    });
    let session = Session { client, events, id };
    // Wait for the CONNACK.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match session.events.recv_timeout(left) {
            Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(session),
            Ok(_) => {}
            Err(_) => bail!("no connection to {} within 10 s", broker.url),
        }
    }
}

/// Retained presence and status of every room, collected until `quiet` passes without a new
/// room. The subscription stays: later updates arrive on the session's events.
fn collect(session: &Session, quiet: Duration) -> anyhow::Result<BTreeMap<String, Seen>> {
    session
        .client
        .subscribe("roomd/+/presence", QoS::AtLeastOnce)?;
    session
        .client
        .subscribe("roomd/+/status", QoS::AtLeastOnce)?;
    let mut rooms: BTreeMap<String, Seen> = BTreeMap::new();
    // Rooms publish status all the time: stop once no new room appeared for `quiet`, and in
    // any case after five times that.
    let start = Instant::now();
    let mut last_new = start;
    loop {
        let now = Instant::now();
        if now.duration_since(last_new) >= quiet || now.duration_since(start) >= quiet * 5 {
            break;
        }
        let deadline = (last_new + quiet).min(start + quiet * 5);
        let Some(p) = session.next_publish(deadline) else {
            break;
        };
        let known = rooms.len();
        take_state(&mut rooms, &p);
        if rooms.len() != known {
            last_new = Instant::now();
        }
    }
    Ok(rooms)
}

/// `fleet list`: every room the broker holds a presence or status for, narrowed by
/// `selection`, in `format`.
pub(crate) fn list(
    broker: &Broker,
    selection: &Selection,
    format: Format,
) -> anyhow::Result<String> {
    let session = connect(broker)?;
    let rooms = collect(&session, selection.quiet)?;
    let _ = session.client.disconnect();
    let rooms = inventory(rooms, selection, false);
    Ok(match format {
        Format::Json => {
            let list: Vec<Value> = rooms.iter().map(Room::to_json).collect();
            serde_json::to_string_pretty(&list)? + "\n"
        }
        Format::Table | Format::Csv => {
            let rows: Vec<Vec<String>> = rooms
                .iter()
                .map(|r| {
                    FIELDS
                        .iter()
                        .map(|f| r.field(f).unwrap_or_default())
                        .collect()
                })
                .collect();
            if format == Format::Csv {
                format::csv(&FIELDS, &rows)
            } else {
                format::table(&FIELDS, &rows)
            }
        }
    })
}

/// The rooms an action goes to: named rooms as they are when nothing narrows them (no need to
/// ask the broker), else the inventory narrowed by `selection`, every online room by default.
fn targets(session: &Session, selection: &Selection) -> anyhow::Result<Vec<String>> {
    if !selection.rooms.is_empty() && selection.filters.is_empty() {
        return Ok(selection.rooms.clone());
    }
    let rooms = collect(session, selection.quiet)?;
    Ok(inventory(rooms, selection, true)
        .into_iter()
        .map(|r| r.id)
        .collect())
}

/// `fleet command` / `fleet config-patch`: `request` to each of `rooms` (or every online room),
/// or with `dry_run` only what would be sent where. Returns the per-room results and whether
/// every room answered `ok`.
pub(crate) fn send(
    broker: &Broker,
    request: Value,
    selection: &Selection,
    dry_run: bool,
    timeout: Duration,
) -> anyhow::Result<(Value, bool)> {
    let session = connect(broker)?;
    let rooms = targets(&session, selection)?;
    if dry_run {
        let _ = session.client.disconnect();
        return Ok((
            json!({"dry_run": true, "rooms": rooms, "request": request}),
            true,
        ));
    }
    session.subscribe_replies()?;
    for room in &rooms {
        session.request(room, &request)?;
    }
    let mut results: BTreeMap<String, Value> = BTreeMap::new();
    let deadline = Instant::now() + timeout;
    while results.len() < rooms.len() {
        let Some(p) = session.next_publish(deadline) else {
            break;
        };
        if let Some((room, reply)) = reply_of(&session, &p)
            && rooms.contains(&room)
        {
            results.insert(room, reply);
        }
    }
    for room in &rooms {
        results.entry(room.clone()).or_insert_with(
            || json!({"error": format!("no reply within {} s", timeout.as_secs())}),
        );
    }
    let _ = session.client.disconnect();
    let all_ok = results.values().all(|r| r["ok"] == true);
    Ok((serde_json::to_value(results)?, all_ok))
}
