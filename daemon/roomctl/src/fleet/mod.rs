//! `roomctl fleet`: the rooms of a fleet through the customer's MQTT 5 broker (docs/fleet.md),
//! with the fleet manager's own client certificate: list them from their retained presence and
//! status, and send a command or configuration patch to many, each answered on a response topic
//! with the room id as correlation data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
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
/// room.
fn collect(
    session: &Session,
    quiet: Duration,
) -> anyhow::Result<BTreeMap<String, (String, Value)>> {
    session
        .client
        .subscribe("roomd/+/presence", QoS::AtLeastOnce)?;
    session
        .client
        .subscribe("roomd/+/status", QoS::AtLeastOnce)?;
    let mut rooms: BTreeMap<String, (String, Value)> = BTreeMap::new();
    // Rooms publish status all the time: stop once no new room appeared for `quiet`, and in
    // any case after five times that.
    let start = Instant::now();
    let mut last_new = start;
    loop {
        let now = Instant::now();
        if now.duration_since(last_new) >= quiet || now.duration_since(start) >= quiet * 5 {
            break;
        }
        let wait = quiet.saturating_sub(now.duration_since(last_new));
        let Ok(event) = session.events.recv_timeout(wait) else {
            break;
        };
        let Event::Incoming(Packet::Publish(p)) = event else {
            continue;
        };
        let topic = String::from_utf8_lossy(&p.topic).into_owned();
        let parts: Vec<&str> = topic.split('/').collect();
        let [_, room, kind] = parts.as_slice() else {
            continue;
        };
        if !rooms.contains_key(*room) {
            last_new = Instant::now();
        }
        let entry = rooms.entry((*room).to_owned()).or_default();
        match *kind {
            "presence" => entry.0 = String::from_utf8_lossy(&p.payload).into_owned(),
            "status" => entry.1 = serde_json::from_slice(&p.payload).unwrap_or(Value::Null),
            _ => {}
        }
    }
    Ok(rooms)
}

/// `fleet list`: every room the broker holds a presence or status for.
pub(crate) fn list(broker: &Broker, quiet: Duration) -> anyhow::Result<Value> {
    let session = connect(broker)?;
    let rooms = collect(&session, quiet)?;
    let _ = session.client.disconnect();
    Ok(Value::Array(
        rooms
            .into_iter()
            .map(|(room, (presence, status))| {
                json!({
                    "room": room,
                    "presence": presence,
                    "name": status["system"]["name"],
                    "version": status["system"]["version"],
                    "meeting": status["meeting"]["state"],
                    "standby": status["standby"]["state"],
                    "media": status["system"]["media"]["state"],
                })
            })
            .collect(),
    ))
}

/// `fleet command` / `fleet config-patch`: `request` to each of `rooms` (or every online room),
/// or with `dry_run` only what would be sent where. Returns the per-room results and whether
/// every room answered `ok`.
pub(crate) fn send(
    broker: &Broker,
    request: Value,
    rooms: Option<Vec<String>>,
    dry_run: bool,
    timeout: Duration,
) -> anyhow::Result<(Value, bool)> {
    let session = connect(broker)?;
    let rooms = match rooms {
        Some(rooms) => rooms,
        None => collect(&session, Duration::from_millis(1500))?
            .into_iter()
            .filter(|(_, (presence, _))| presence == "online")
            .map(|(room, _)| room)
            .collect(),
    };
    if dry_run {
        let _ = session.client.disconnect();
        return Ok((
            json!({"dry_run": true, "rooms": rooms, "request": request}),
            true,
        ));
    }
    let replies = |room: &str| format!("roomd/{room}/replies/{}", session.id);
    session
        .client
        .subscribe(format!("roomd/+/replies/{}", session.id), QoS::AtLeastOnce)?;
    // The subscription is in place once its SUBACK is back.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match session
            .events
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(Event::Incoming(Packet::SubAck(_))) => break,
            Ok(_) => {}
            Err(_) => bail!("the broker did not confirm the subscription"),
        }
    }
    for room in &rooms {
        let properties = PublishProperties {
            response_topic: Some(replies(room)),
            correlation_data: Some(room.clone().into_bytes().into()),
            content_type: Some("application/json".into()),
            ..Default::default()
        };
        session.client.publish_with_properties(
            format!("roomd/{room}/commands"),
            QoS::AtLeastOnce,
            false,
            request.to_string(),
            properties,
        )?;
    }
    let mut results: BTreeMap<String, Value> = BTreeMap::new();
    let deadline = Instant::now() + timeout;
    while results.len() < rooms.len() {
        let Ok(event) = session
            .events
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        else {
            break;
        };
        let Event::Incoming(Packet::Publish(p)) = event else {
            continue;
        };
        let room = p
            .properties
            .as_ref()
            .and_then(|props| props.correlation_data.as_ref())
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .unwrap_or_default();
        if rooms.contains(&room) {
            let reply = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
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
