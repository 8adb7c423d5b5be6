//! Many simulated rooms in one process, each running roomd-fleet's real client ([`Link`]:
//! TLS with a client certificate, MQTT 5 session, last will, jittered reconnect backoff, and
//! [`Link::announce`] on every CONNACK), against one broker. For the scale test and benchmark
//! (tests/tests/fleet_scale.rs): it connects every room, prints `ready <ms>`, then watches the
//! rooms lose the broker and come back, prints one JSON summary of the reconnects, and keeps
//! the rooms connected until its standard input closes.
//!
//! Arguments (all required, in this order): broker host, port, broker CA (PEM file), client CA
//! certificate (PEM file), its key (PEM file), its common name, number of rooms, backoff
//! minimum ms, backoff maximum ms, seconds to wait for everything.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use roomd_fleet::{Link, LinkSettings, client_config};
use roomd_identity::tls::ServedCertificate;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [
        host,
        port,
        broker_ca,
        ca_cert,
        ca_key,
        ca_cn,
        rooms,
        min_ms,
        max_ms,
        timeout_s,
    ] = args.as_slice()
    else {
        return Err(
            "usage: roomd-fleet-sim HOST PORT BROKER_CA CA_CERT CA_KEY CA_CN ROOMS \
                    BACKOFF_MIN_MS BACKOFF_MAX_MS TIMEOUT_S"
                .into(),
        );
    };
    let num = |s: &String| s.parse::<u64>().map_err(|e| format!("{s}: {e}"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let broker_ca = std::fs::read(broker_ca).map_err(|e| format!("{broker_ca}: {e}"))?;
    let ca_key = KeyPair::from_pem(&std::fs::read_to_string(ca_key).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let _ = ca_cert;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_cn.as_str());
    let issuer = Issuer::new(ca_params, ca_key);
    let rooms = num(rooms)? as usize;
    let settings = |room_id: String, tls| LinkSettings {
        room_id,
        host: host.clone(),
        port: port.parse().unwrap_or(8883),
        keepalive: Duration::from_secs(30),
        backoff_min: Duration::from_millis(num(min_ms).unwrap_or(1000)),
        backoff_max: Duration::from_millis(num(max_ms).unwrap_or(60000)),
        max_packet_bytes: 65536 + 4096,
        tls,
    };
    let mut configs = Vec::with_capacity(rooms);
    for i in 0..rooms {
        let room_id = format!("sim-{i:05}");
        let certified = issue(&issuer, &room_id)?;
        let served = Arc::new(ServedCertificate::new(certified));
        let tls = client_config(&broker_ca, served).map_err(|e| e.to_string())?;
        configs.push(settings(room_id, Arc::new(tls)));
    }
    let timeout = Duration::from_secs(num(timeout_s)?);
    runtime.block_on(simulate(configs, timeout))
}

fn issue(issuer: &Issuer<'static, KeyPair>, cn: &str) -> Result<CertifiedKey, String> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.signed_by(&key, issuer).map_err(|e| e.to_string())?;
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing = rustls::crypto::ring::sign::any_ecdsa_type(&der).map_err(|e| e.to_string())?;
    Ok(CertifiedKey::new(
        vec![CertificateDer::from(cert.der().to_vec())],
        signing,
    ))
}

/// One room: connect, announce on every CONNACK, report (lost, back) times.
async fn room(
    settings: LinkSettings,
    start: Instant,
    events: tokio::sync::mpsc::UnboundedSender<(usize, &'static str, Duration)>,
    index: usize,
) {
    let link = Link::connect(settings);
    let mut state = link.state.clone();
    let mut announced = 0;
    let mut connected = false;
    loop {
        let (now_connected, connects) = {
            let s = state.borrow_and_update();
            (s.connected, s.connects)
        };
        if connects != announced && now_connected {
            while !link.announce() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            announced = connects;
            let _ = events.send((index, "up", start.elapsed()));
        }
        if connected && !now_connected {
            let _ = events.send((index, "down", start.elapsed()));
        }
        connected = now_connected;
        if state.changed().await.is_err() {
            return;
        }
    }
}

async fn simulate(configs: Vec<LinkSettings>, timeout: Duration) -> Result<(), String> {
    let n = configs.len();
    let start = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (i, settings) in configs.into_iter().enumerate() {
        tokio::spawn(room(settings, start, tx.clone(), i));
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut ups = vec![0u32; n];
    let mut first_down: Vec<Option<Duration>> = vec![None; n];
    let mut back: Vec<Option<Duration>> = vec![None; n];
    let mut up_count = 0;
    let mut ready_at = None;
    loop {
        let Ok(Some((i, what, at))) = tokio::time::timeout_at(deadline, rx.recv()).await else {
            break;
        };
        match what {
            "up" => {
                ups[i] += 1;
                if ups[i] == 1 {
                    up_count += 1;
                    if up_count == n {
                        ready_at = Some(at);
                        println!("ready {}", at.as_millis());
                    }
                } else if back[i].is_none() && first_down[i].is_some() {
                    back[i] = Some(at);
                    if back.iter().all(Option::is_some) {
                        break;
                    }
                }
            }
            _ => {
                if ready_at.is_some() && first_down[i].is_none() {
                    first_down[i] = Some(at);
                }
            }
        }
    }
    let lost_at = first_down.iter().flatten().min().copied();
    let mut delays: Vec<u128> = back
        .iter()
        .flatten()
        .filter_map(|b| lost_at.map(|l| b.saturating_sub(l).as_millis()))
        .collect();
    delays.sort_unstable();
    let pct = |p: usize| delays.get((delays.len() * p / 100).min(delays.len().saturating_sub(1)));
    // The most rooms that came back within any one 100 ms window.
    let mut peak_100ms = 0;
    for (i, d) in delays.iter().enumerate() {
        let within = delays[i..].iter().take_while(|e| **e < d + 100).count();
        peak_100ms = peak_100ms.max(within);
    }
    let summary = serde_json::json!({
        "rooms": n,
        "ready_ms": ready_at.map(|d| d.as_millis()),
        "lost": first_down.iter().flatten().count(),
        "back": delays.len(),
        "back_p10_ms": pct(10),
        "back_p50_ms": pct(50),
        "back_p90_ms": pct(90),
        "back_max_ms": delays.last(),
        "peak_per_100ms": peak_100ms,
    });
    println!("{summary}");
    // The rooms stay connected until standard input closes, so that the caller can look at
    // the broker's view of them.
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    })
    .await;
    Ok(())
}
