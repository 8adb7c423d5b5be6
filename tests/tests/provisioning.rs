//! Zero-touch provisioning against real parts: Python's standard HTTPS file server (Debian's
//! /usr/bin/python3, not whatever python3 comes first in PATH) in a network namespace (reached
//! over the veth, its certificate from a test CA), bundles made and signed by the real
//! `roomctl provision`, and a real roomd whose device key is in swtpm.
//!
//! One room goes through what a customer's server may hand it: nothing yet (404, retried), a
//! tampered bundle, an expired one, one for another device, one whose configuration is invalid,
//! then the good one, and after a restart with a new source an older serial (a replay). Each
//! refusal leaves the configuration as it was and says why in `status.provisioning.error`.
//!
//! Another room's bundle asks for enrolment with Debian's pebble (ACME, external account
//! binding) and names a Mosquitto broker that trusts pebble's root for client certificates: the
//! room serves the pebble-issued chain for its TPM key and joins the broker with it, without a
//! restart.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use roomd_tests::{
    ADMIN_PASSWORD, ADMIN_USERNAME, HarnessError, Roomd, Swtpm, TestCa, TestNetwork, run_roomctl,
    wait_for,
};
use serde_json::{Value, json};

/// Port of the bundle server inside the namespace (the namespace is the test's own).
const SERVER_PORT: u16 = 8443;
/// Bound of every wait for the room to act on a bundle: a refusal is retried after at most
/// `retry_max_s` (5 s), a failure after at most 5 s too.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Python's `http.server` with TLS, serving one directory, run inside the namespace.
const SERVER_SCRIPT: &str = r#"
import http.server, ssl, sys, os
directory, cert, key, address, port = sys.argv[1:6]
handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=directory, **k)
server = http.server.ThreadingHTTPServer((address, int(port)), handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("serving", flush=True)
server.serve_forever()
"#;

struct BundleServer {
    child: Child,
    dir: PathBuf,
    base: String,
}

impl BundleServer {
    /// Serves `https://<namespace address>:8443/`, with a certificate for the address.
    fn start(net: &TestNetwork, work: &Path, ca: &TestCa) -> Result<BundleServer, HarnessError> {
        let address = net.namespace_address().to_string();
        BundleServer::start_named(net, work, ca, &address)
    }

    /// Serves `https://<name>:8443/` on the namespace's address, with a certificate for `name`.
    fn start_named(
        net: &TestNetwork,
        work: &Path,
        ca: &TestCa,
        name: &str,
    ) -> Result<BundleServer, HarnessError> {
        let address = net.namespace_address();
        let cert = ca.issue_server(&[name.to_owned()])?;
        let dir = work.join("www");
        std::fs::create_dir_all(&dir).map_err(|e| io_error("www", e))?;
        let (cert_path, key_path) = (work.join("server.pem"), work.join("server.key"));
        std::fs::write(&cert_path, &cert.cert_pem).map_err(|e| io_error("cert", e))?;
        std::fs::write(&key_path, &cert.key_pem).map_err(|e| io_error("key", e))?;
        let child = net
            .command("/usr/bin/python3")
            .args(["-c", SERVER_SCRIPT])
            .arg(&dir)
            .arg(&cert_path)
            .arg(&key_path)
            .arg(address.to_string())
            .arg(SERVER_PORT.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| io_error("cannot start /usr/bin/python3 https server", e))?;
        let server = BundleServer {
            child,
            dir,
            base: format!("https://{name}:{SERVER_PORT}"),
        };
        let target = std::net::SocketAddr::from((address, SERVER_PORT));
        wait_for(
            "the bundle server to listen",
            Duration::from_secs(10),
            || {
                Ok(
                    std::net::TcpStream::connect_timeout(&target, Duration::from_millis(200))
                        .ok()
                        .map(|_| ()),
                )
            },
        )?;
        Ok(server)
    }

    fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }

    /// Puts `bytes` at `/name`, atomically (the server never sends half a file).
    fn put(&self, name: &str, bytes: &[u8]) {
        let tmp = self.dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, bytes).expect("write bundle");
        std::fs::rename(&tmp, self.dir.join(name)).expect("rename bundle");
    }
}

impl Drop for BundleServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn io_error(what: &str, e: std::io::Error) -> HarnessError {
    HarnessError::Config {
        message: format!("{what}: {e}"),
    }
}

fn status(roomd: &Roomd, token: &str) -> Value {
    roomd
        .get("/api/v1/status")
        .bearer(token)
        .send()
        .and_then(|r| r.json())
        .expect("status")
}

fn config(roomd: &Roomd, token: &str) -> Value {
    roomd
        .get("/api/v1/config")
        .bearer(token)
        .send()
        .and_then(|r| r.json())
        .expect("config")
}

/// Waits until `status.provisioning` is in `state` with an error containing `needle`.
fn wait_provisioning(roomd: &Roomd, token: &str, state: &str, needle: &str) -> Value {
    wait_for(
        &format!("status.provisioning {state} with {needle:?}"),
        STEP_TIMEOUT,
        || {
            let p = status(roomd, token)["provisioning"].clone();
            let ok = p["state"] == state && p["error"].as_str().unwrap_or("").contains(needle);
            Ok(ok.then_some(p))
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}; last status.provisioning: {}; roomd said:\n{}",
            status(roomd, token)["provisioning"],
            roomd.stderr_text()
        )
    })
}

/// Signs `payload` with roomctl into a bundle.
fn sign(work: &Path, key: &Path, name: &str, payload: &Value) -> Vec<u8> {
    let payload_path = work.join(format!("{name}.payload.json"));
    std::fs::write(&payload_path, serde_json::to_vec_pretty(payload).unwrap()).unwrap();
    let out = run_roomctl(
        &[],
        &[
            "provision",
            "sign",
            "--key",
            key.to_str().unwrap(),
            "--payload",
            payload_path.to_str().unwrap(),
        ],
    )
    .expect("roomctl runs");
    assert_eq!(out.code, Some(0), "roomctl provision sign: {}", out.stderr);
    out.stdout.into_bytes()
}

#[test]
fn a_room_applies_a_signed_bundle_and_refuses_tampered_expired_foreign_invalid_and_replayed_ones() {
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let net = TestNetwork::create().expect("test network (needs root)");
    let ca = TestCa::new("provisioning test CA").expect("CA");
    let server = BundleServer::start(&net, work, &ca).expect("bundle server");
    let ca_path = work.join("server-ca.pem");
    std::fs::write(&ca_path, ca.cert_pem()).unwrap();

    // The customer's signing key, made with roomctl; the image trusts its public half.
    let (key, public) = (work.join("signing.key"), work.join("signing.pub"));
    let out = run_roomctl(
        &[],
        &[
            "provision",
            "keygen",
            "--key",
            key.to_str().unwrap(),
            "--public",
            public.to_str().unwrap(),
        ],
    )
    .expect("roomctl runs");
    assert_eq!(
        out.code,
        Some(0),
        "roomctl provision keygen: {}",
        out.stderr
    );

    let swtpm = Swtpm::start().expect("swtpm");
    let provisioning = |url: &str| {
        format!(
            "{}[provisioning]\nurl = \"{url}\"\ntrust_key = \"{}\"\nserver_ca_file = \"{}\"\n\
             retry_max_s = 5\n",
            swtpm.identity_toml(),
            public.display(),
            ca_path.display()
        )
    };
    let mut roomd = Roomd::start_claimed(&provisioning(&server.url("bundle.json"))).expect("roomd");
    let token = roomd.admin_token().expect("admin token");
    let device = status(&roomd, &token)["identity"]["key_sha256"]
        .as_str()
        .expect("identity.key_sha256")
        .to_owned();
    let mut events = roomd.websocket_with_token(&token).expect("event socket");
    events
        .send_json(
            &json!({"type": "subscribe", "status": ["provisioning"], "events": ["provisioning.*"]}),
        )
        .expect("subscribe");
    let volume_before = config(&roomd, &token)["audio"]["default_volume"].clone();
    assert_ne!(
        volume_before,
        json!(40),
        "the test's volume must be a change"
    );

    // Nothing on the server yet: a failure that is retried.
    let p = wait_provisioning(&roomd, &token, "failed", "404");
    assert_eq!(p["source"], server.url("bundle.json"));
    assert_eq!(p["serial"], Value::Null);

    let state_ca = roomd.state_dir().join("provisioning").join("ca.pem");
    let payload = |serial: u64, not_after: &str, devices: Value| {
        json!({
            "serial": serial,
            "not_before": "2020-01-01T00:00:00Z",
            "not_after": not_after,
            "devices": devices,
            "config": format!(
                "[audio]\ndefault_volume = 40\n[fleet]\nca_file = \"{}\"\n",
                state_ca.display()
            ),
            "ca_certificates": [ca.cert_pem()],
        })
    };
    let unchanged = |roomd: &Roomd| {
        let c = config(roomd, &token);
        assert_eq!(
            c["audio"]["default_volume"], volume_before,
            "config changed"
        );
        assert_eq!(c["fleet"]["ca_file"], "", "config changed");
        assert!(!state_ca.exists(), "the CA file was written");
    };

    // One payload byte changed after signing.
    let good = sign(
        work,
        &key,
        "good",
        &payload(5, "2999-01-01T00:00:00Z", json!([device])),
    );
    let mut envelope: Value = serde_json::from_slice(&good).unwrap();
    let mut bytes = STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let at = bytes.iter().position(|b| *b == b'4').expect("a '4' of 40");
    bytes[at] = b'9';
    envelope["payload"] = json!(STANDARD.encode(&bytes));
    server.put("bundle.json", &serde_json::to_vec(&envelope).unwrap());
    wait_provisioning(&roomd, &token, "refused", "signature");
    unchanged(&roomd);

    // Expired.
    let expired = sign(
        work,
        &key,
        "expired",
        &payload(6, "2021-06-01T00:00:00Z", json!([device])),
    );
    server.put("bundle.json", &expired);
    wait_provisioning(&roomd, &token, "refused", "not_after 2021-06-01T00:00:00Z");
    unchanged(&roomd);

    // For another device only.
    let other = "0f".repeat(32);
    let foreign = sign(
        work,
        &key,
        "foreign",
        &payload(7, "2999-01-01T00:00:00Z", json!([other])),
    );
    server.put("bundle.json", &foreign);
    wait_provisioning(&roomd, &token, "refused", &device);
    unchanged(&roomd);

    // Signed and for this device, but its configuration does not pass the checks: refused
    // whole, its CA certificates not written either.
    let invalid = sign(work, &key, "invalid", &{
        let mut p = payload(8, "2999-01-01T00:00:00Z", json!([device]));
        p["config"] = json!({"audio": {"default_volume": 400}});
        p
    });
    server.put("bundle.json", &invalid);
    wait_provisioning(&roomd, &token, "refused", "audio.default_volume");
    unchanged(&roomd);

    // The good one.
    server.put("bundle.json", &good);
    let p = wait_provisioning(&roomd, &token, "applied", "");
    assert_eq!(p["serial"], 5);
    assert_eq!(p["error"], "");
    let c = config(&roomd, &token);
    assert_eq!(c["audio"]["default_volume"], 40);
    assert_eq!(c["fleet"]["ca_file"], state_ca.display().to_string());
    assert_eq!(
        std::fs::read_to_string(&state_ca).unwrap().trim(),
        ca.cert_pem().trim()
    );

    // One event per refusal (not one per retry), then the applied one.
    let (applied, before) = events
        .wait_for("provisioning.applied", Duration::from_secs(5), |m| {
            m["name"] == "provisioning.applied"
        })
        .expect("the provisioning.applied event");
    assert_eq!(applied["data"]["serial"], 5);
    assert_eq!(applied["data"]["source"], server.url("bundle.json"));
    let refusals: Vec<String> = before
        .iter()
        .filter(|m| m["name"] == "provisioning.refused")
        .map(|m| m["data"]["reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(refusals.len(), 4, "{refusals:?}");
    for (reason, needle) in refusals.iter().zip([
        "signature",
        "not_after",
        device.as_str(),
        "audio.default_volume",
    ]) {
        assert!(reason.contains(needle), "{reason:?} names {needle:?}");
    }

    // After a restart with the same source, nothing is fetched again.
    roomd.restart().expect("restart");
    let p = status(&roomd, &token)["provisioning"].clone();
    assert_eq!(
        (p["state"].as_str(), p["serial"].as_u64()),
        (Some("applied"), Some(5))
    );

    // A new source that serves an older serial: a replay, refused.
    let replay = sign(work, &key, "replay", &{
        let mut p = payload(3, "2999-01-01T00:00:00Z", json!(["*"]));
        p["config"] = json!({"audio": {"default_volume": 10}});
        p
    });
    server.put("replay.json", &replay);
    roomd.stop_sigterm().expect("stop");
    let path = roomd.config_path().to_owned();
    let mut file: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    file["provisioning"]["url"] = toml::Value::String(server.url("replay.json"));
    std::fs::write(&path, toml::to_string(&file).unwrap()).unwrap();
    roomd.start_again().expect("start again");
    let p = wait_provisioning(&roomd, &token, "refused", "replay");
    assert_eq!(p["serial"], 5, "the applied serial stays");
    assert_eq!(config(&roomd, &token)["audio"]["default_volume"], 40);
}

/// What a TLS client that trusts only pebble's root sees at the room's API, for `name`: the
/// served chain (leaf first) and the answer to `GET path` with `token`; `None` while the room
/// still serves a certificate that does not chain to pebble's root.
fn via_pebble_trust(
    roomd: &Roomd,
    pebble_root: &str,
    name: &str,
    token: &str,
    path: &str,
) -> Option<(Vec<rustls_pki_types::CertificateDer<'static>>, Value)> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, ServerName};
    use std::io::{Read, Write};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pebble_root.as_bytes()) {
        roots.add(cert.ok()?).ok()?;
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .ok()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let server_name = ServerName::try_from(name.to_owned()).ok()?;
    let connection =
        rustls::ClientConnection::new(std::sync::Arc::new(config), server_name).ok()?;
    let tcp = std::net::TcpStream::connect((roomd.address(), roomd.port())).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {name}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).ok()?;
    let mut answer = Vec::new();
    // A close without close_notify still leaves the answer read so far.
    let _ = tls.read_to_end(&mut answer);
    let chain = tls.conn.peer_certificates()?.to_vec();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Some((chain, serde_json::from_str(&body).ok()?))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

#[test]
fn a_bundle_enrols_the_tpm_key_over_acme_and_the_room_serves_and_joins_its_fleet_with_the_issued_chain()
 {
    use roomd_tests::mosquitto::{FleetCa, Mosquitto};
    use roomd_tests::pebble::{EAB_HMAC_KEY, EAB_KID, Pebble};
    use sha2::{Digest, Sha256};
    use x509_parser::prelude::{FromDer, X509Certificate};

    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let net = TestNetwork::create().expect("test network (needs root)");
    let ca = TestCa::new("provisioning test CA").expect("CA");
    let server = BundleServer::start(&net, work, &ca).expect("bundle server");
    let ca_path = work.join("server-ca.pem");
    std::fs::write(&ca_path, ca.cert_pem()).unwrap();
    let pebble = Pebble::start(work, &ca).expect("pebble");
    let root = pebble.root_pem().expect("pebble root");
    let intermediate = pebble.intermediate_pem().expect("pebble intermediate");
    // The customer's broker: its own CA for its server certificate, and pebble's root for the
    // rooms' client certificates, which the rooms get by enrolment.
    let fleet_ca = FleetCa::new().expect("fleet CA");
    let broker = Mosquitto::start(&fleet_ca, &root).expect("mosquitto");
    let (key, public) = (work.join("signing.key"), work.join("signing.pub"));
    let out = run_roomctl(
        &[],
        &[
            "provision",
            "keygen",
            "--key",
            key.to_str().unwrap(),
            "--public",
            public.to_str().unwrap(),
        ],
    )
    .expect("roomctl runs");
    assert_eq!(
        out.code,
        Some(0),
        "roomctl provision keygen: {}",
        out.stderr
    );

    let swtpm = Swtpm::start().expect("swtpm");
    let roomd = Roomd::start_claimed(&format!(
        "{}[provisioning]\nurl = \"{}\"\ntrust_key = \"{}\"\nserver_ca_file = \"{}\"\n\
         retry_max_s = 5\n",
        swtpm.identity_toml(),
        server.url("bundle.json"),
        public.display(),
        ca_path.display()
    ))
    .expect("roomd");
    let token = roomd.admin_token().expect("admin token");
    let device = status(&roomd, &token)["identity"]["key_sha256"]
        .as_str()
        .expect("identity.key_sha256")
        .to_owned();

    let identifier = "room-7.example.test";
    let provisioned_ca = roomd.state_dir().join("provisioning").join("ca.pem");
    let bundle = sign(
        work,
        &key,
        "enrol",
        &json!({
            "serial": 1,
            "not_before": "2020-01-01T00:00:00Z",
            "not_after": "2999-01-01T00:00:00Z",
            "devices": [device],
            "config": {
                "audio": {"default_volume": 35},
                "fleet": {"broker": broker.url(), "ca_file": provisioned_ca},
            },
            // The CAs of the ACME server's HTTPS and of the broker.
            "ca_certificates": [ca.cert_pem(), fleet_ca.cert_pem()],
            "enrolment": {"acme": {
                "directory": pebble.directory(),
                "eab_kid": EAB_KID,
                "eab_hmac_key": EAB_HMAC_KEY,
                "identifier": identifier,
            }},
        }),
    );
    server.put("bundle.json", &bundle);

    let (chain, seen) = wait_for(
        "the room to serve a pebble-issued chain",
        STEP_TIMEOUT * 2,
        || {
            Ok(via_pebble_trust(
                &roomd,
                &root,
                identifier,
                &token,
                "/api/v1/status",
            ))
        },
    )
    .unwrap_or_else(|e| panic!("{e}; roomd said:\n{}", roomd.stderr_text()));

    // The leaf certifies the TPM key and is signed by pebble's intermediate.
    let (_, leaf) = X509Certificate::from_der(chain[0].as_ref()).expect("leaf parses");
    assert_eq!(
        format!("{:x}", Sha256::digest(leaf.public_key().raw)),
        device,
        "the issued certificate is for the device key"
    );
    let intermediate_der = rustls_pki_types::CertificateDer::from(
        x509_parser::pem::parse_x509_pem(intermediate.as_bytes())
            .expect("intermediate PEM")
            .1
            .contents,
    );
    let (_, issuer) = X509Certificate::from_der(intermediate_der.as_ref()).expect("intermediate");
    assert_eq!(
        leaf.issuer(),
        issuer.subject(),
        "issued by pebble's intermediate"
    );
    leaf.verify_signature(Some(issuer.public_key()))
        .expect("signed by pebble's intermediate");

    // The status says the same (read over the newly trusted connection).
    let p = &seen["provisioning"];
    let p = if p["enrolment"]["state"] == "enrolled" {
        p.clone()
    } else {
        wait_for(
            "status.provisioning.enrolment enrolled",
            STEP_TIMEOUT,
            || {
                Ok(
                    via_pebble_trust(&roomd, &root, identifier, &token, "/api/v1/status")
                        .map(|(_, s)| s["provisioning"].clone())
                        .filter(|p| p["enrolment"]["state"] == "enrolled"),
                )
            },
        )
        .expect("enrolled")
    };
    assert_eq!(p["state"], "applied");
    assert_eq!(p["serial"], 1);
    assert_eq!(p["enrolment"]["issuer"], issuer.subject().to_string());
    assert!(!p["enrolment"]["not_after"].as_str().unwrap().is_empty());
    let (_, config) = via_pebble_trust(&roomd, &root, identifier, &token, "/api/v1/config")
        .expect("config over the issued certificate");
    assert_eq!(config["audio"]["default_volume"], 35);

    // The fleet channel started without a restart, with the CA-issued certificate: the broker
    // knows the room by that certificate's CN and its ACL lets it publish its presence.
    let room_id = leaf
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .expect("the issued certificate has a CN")
        .to_owned();
    let admin = broker
        .client(&fleet_ca, "fleet-admin")
        .expect("fleet admin");
    let presence = format!("roomd/{room_id}/presence");
    wait_for("the room's presence at the broker", STEP_TIMEOUT, || {
        let got = admin.receive(&presence, 1, Duration::from_secs(2), "%p")?;
        Ok(got.first().filter(|p| *p == "online").cloned())
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}; broker log:\n{}\nroomd said:\n{}",
            broker.log(),
            roomd.stderr_text()
        )
    });
    let (_, seen) = via_pebble_trust(&roomd, &root, identifier, &token, "/api/v1/status")
        .expect("status over the issued certificate");
    assert_eq!(seen["fleet"]["connected"], true, "{}", seen["fleet"]);
    assert_eq!(seen["fleet"]["room_id"], room_id);
}

/// The namespace's own `/etc/resolv.conf` (`ip netns exec` mounts `/etc/netns/<ns>/resolv.conf`
/// over it), removed again when dropped.
struct NamespaceResolvConf(PathBuf);

impl NamespaceResolvConf {
    fn write(net: &TestNetwork, contents: &str) -> NamespaceResolvConf {
        let dir = PathBuf::from("/etc/netns").join(net.name());
        std::fs::create_dir_all(&dir).expect("create /etc/netns/<ns>");
        std::fs::write(dir.join("resolv.conf"), contents).expect("write resolv.conf");
        NamespaceResolvConf(dir)
    }
}

impl Drop for NamespaceResolvConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Debian's dnsmasq in the namespace, answering the test domain's records and nothing else.
struct Dnsmasq(Child);

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_room_finds_its_bundle_by_unicast_dns_sd_and_takes_a_p256_signature_made_with_openssl() {
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let net = TestNetwork::create().expect("test network (needs root)");
    let address = net.namespace_address();
    let (domain, server_name) = ("rooms.test", "bundles.rooms.test");
    let ca = TestCa::new("provisioning test CA").expect("CA");
    let server = BundleServer::start_named(&net, work, &ca, server_name).expect("bundle server");
    let ca_path = work.join("server-ca.pem");
    std::fs::write(&ca_path, ca.cert_pem()).unwrap();

    // The site's DNS: the service's SRV and TXT records, and the server's address.
    let service = format!("_roomd-provisioning._tcp.{domain}");
    let dnsmasq = Dnsmasq(
        net.command("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
            ])
            .args(["--bind-interfaces", "--port=53", "--user=root"])
            .arg(format!("--listen-address={address}"))
            .arg(format!("--pid-file={}", work.join("dnsmasq.pid").display()))
            .arg(format!("--srv-host={service},{server_name},{SERVER_PORT}"))
            .arg(format!("--txt-record={service},path=/bundle.json"))
            .arg(format!("--host-record={server_name},{address}"))
            .arg(format!(
                "--log-facility={}",
                work.join("dnsmasq.log").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (Debian package dnsmasq-base)"),
    );
    let _resolv =
        NamespaceResolvConf::write(&net, &format!("nameserver {address}\nsearch {domain}\n"));

    // This customer signs with an ECDSA P-256 key made by openssl (the other tests use
    // roomctl's Ed25519 keys).
    let (key, public) = (work.join("signing.key"), work.join("signing.pub"));
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        key.to_str().unwrap(),
    ]);
    openssl(&[
        "pkey",
        "-in",
        key.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    let bundle = sign(
        work,
        &key,
        "dns-sd",
        &json!({
            "serial": 1,
            "not_before": "2020-01-01T00:00:00Z",
            "not_after": "2999-01-01T00:00:00Z",
            "devices": ["*"],
            "config": {"audio": {"default_volume": 25}},
        }),
    );
    server.put("bundle.json", &bundle);

    // roomd inside the namespace (its resolv.conf), with a software key: the namespace does
    // not reach the host's swtpm, and the key is not what this test is about.
    let mut roomd = Roomd::builder()
        .in_network(&net)
        .config(&format!(
            "[provisioning]\ndns_sd = true\ntrust_key = \"{}\"\nserver_ca_file = \"{}\"\n\
             retry_max_s = 5\n",
            public.display(),
            ca_path.display()
        ))
        .start()
        .expect("roomd");
    roomd.claim(ADMIN_USERNAME, ADMIN_PASSWORD).expect("claim");
    let token = roomd.admin_token().expect("admin token");
    let p = wait_provisioning(&roomd, &token, "applied", "");
    assert_eq!(
        p["source"],
        format!("https://{server_name}:{SERVER_PORT}/bundle.json"),
        "dnsmasq log:\n{}",
        std::fs::read_to_string(work.join("dnsmasq.log")).unwrap_or_default()
    );
    assert_eq!(p["serial"], 1);
    assert_eq!(config(&roomd, &token)["audio"]["default_volume"], 25);
    drop(dnsmasq);
}
