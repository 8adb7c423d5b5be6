//! Mutual TLS for fleet managers: a client certificate from the configured CA authenticates with
//! the configured role; one from another CA is refused in the handshake; clients without one
//! keep using tokens.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use roomd_tests::{HarnessError, Roomd};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::Value;

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().expect("key");
    let pem = params.self_signed(&key).expect("CA").pem();
    Ca { params, key, pem }
}

/// A client certificate and its key (PKCS#8 DER).
type ClientIdentity = (CertificateDer<'static>, Vec<u8>);

/// A client certificate and key for `name`, issued by `ca`.
fn client(ca: &Ca, name: &str) -> ClientIdentity {
    let mut params = CertificateParams::new(Vec::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().expect("key");
    let cert = params
        .signed_by(&key, &Issuer::from_params(&ca.params, &ca.key))
        .expect("client certificate");
    (cert.der().clone(), key.serialize_der())
}

/// One request over TLS, with `identity` as client certificate; `Err` if the connection fails.
fn request(
    roomd: &Roomd,
    identity: Option<ClientIdentity>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, Value), String> {
    request_with(
        roomd,
        identity,
        method,
        path,
        body,
        &[("Content-Type", "application/json")],
    )
}

/// [`request`] with the given headers instead of the JSON content type.
fn request_with(
    roomd: &Roomd,
    identity: Option<ClientIdentity>,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Result<(u16, Value), String> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(roomd.cert_path()).expect("device certificate"))
        .expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![cert],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
            )
            .expect("client auth"),
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let connection = ClientConnection::new(Arc::new(config), name).expect("connection");
    let socket = TcpStream::connect(("127.0.0.1", roomd.port())).map_err(|e| e.to_string())?;
    let mut tls = StreamOwned::new(connection, socket);
    let body = body.unwrap_or("");
    let headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\
         {headers}Content-Length: {}\r\n\r\n{body}",
        roomd.port(),
        body.len()
    );
    tls.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    let mut answer = String::new();
    tls.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    let status = answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not HTTP: {answer}"))?;
    let json = answer
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    Ok((status, json))
}

#[test]
fn a_fleet_manager_certificate_authenticates_with_the_configured_role() -> Result<(), HarnessError>
{
    let fleet = ca("Fleet Manager CA");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_path = dir.path().join("fleet-ca.pem");
    std::fs::write(&ca_path, &fleet.pem).expect("write CA");
    let roomd = Roomd::start_claimed(&format!(
        "[api]\nclient_ca = \"{}\"\nclient_role = \"audit\"\n",
        ca_path.display()
    ))?;

    let manager = client(&fleet, "fleet-manager-1");
    let (status, who) = request(
        &roomd,
        Some(manager.clone()),
        "GET",
        "/api/v1/session",
        None,
    )
    .expect("mutual TLS handshake");
    assert_eq!(status, 200, "{who}");
    assert_eq!(who["kind"], "certificate", "{who}");
    assert_eq!(who["role"], "audit", "{who}");
    assert_eq!(who["username"], "fleet-manager-1", "{who}");
    // The role decides, as for any principal: audit reads, it does not change.
    let (status, _) =
        request(&roomd, Some(manager.clone()), "GET", "/api/v1/config", None).expect("request");
    assert_eq!(status, 200);
    let (status, _) = request(
        &roomd,
        Some(manager),
        "PATCH",
        "/api/v1/config",
        Some(r#"{"audio":{"default_volume":10}}"#),
    )
    .expect("request");
    assert_eq!(status, 403);

    // Another CA's certificate does not get through the handshake.
    let stranger = client(&ca("Fleet Manager CA"), "fleet-manager-1");
    let refused = request(&roomd, Some(stranger), "GET", "/api/v1/session", None);
    assert!(refused.is_err(), "{refused:?}");

    // Without a certificate: anonymous (401), and tokens work as before.
    let (status, _) = request(&roomd, None, "GET", "/api/v1/session", None).expect("request");
    assert_eq!(status, 401);
    let token = roomd.token_for("user")?;
    let who = roomd
        .get("/api/v1/session")
        .bearer(&token)
        .send()?
        .expect_status(200, "token")?
        .json()?;
    assert_eq!(who["kind"], "token");
    Ok(())
}

#[test]
fn without_a_client_ca_certificates_authenticate_nobody() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    let fleet = ca("Fleet Manager CA");
    // rustls on the server does not ask for a certificate, so the client sends none.
    let (status, _) = request(
        &roomd,
        Some(client(&fleet, "x")),
        "GET",
        "/api/v1/session",
        None,
    )
    .expect("handshake");
    assert_eq!(status, 401);
    Ok(())
}

#[test]
fn an_unusable_client_ca_file_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("missing-ca.pem");
    match Roomd::start(&format!("[api]\nclient_ca = \"{}\"\n", path.display())) {
        Err(HarnessError::ExitedEarly { stderr, .. }) => {
            assert!(stderr.contains("api.client_ca"), "{stderr}");
            assert!(stderr.contains("missing-ca.pem"), "{stderr}");
        }
        Err(other) => panic!("unexpected harness error: {other}"),
        Ok(_) => panic!("roomd started with an unreadable client CA"),
    }
}

#[test]
fn no_api_role_can_change_whom_the_device_trusts() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    for role in ["admin", "integrator"] {
        let token = roomd.token_for(role)?;
        for (patch, key) in [
            (
                serde_json::json!({"api": {"client_ca": "/etc/ssl/certs/ca-certificates.crt"}}),
                "api.client_ca",
            ),
            (
                serde_json::json!({"api": {"client_role": "admin"}}),
                "api.client_role",
            ),
            (
                serde_json::json!({"identity": {"backend": "tpm"}}),
                "identity.backend",
            ),
        ] {
            let response = roomd
                .request("PATCH", "/api/v1/config")
                .bearer(&token)
                .json(&patch)
                .send()?;
            assert_eq!(response.status, 422, "{role} {key}: {}", response.text());
            assert_eq!(response.json()?["field"], key, "{role}");
        }
    }
    // The file is unchanged: still the harness's software key and no client CA.
    let saved = std::fs::read_to_string(roomd.config_path()).expect("config file");
    assert!(!saved.contains("client_ca = \"/"), "{saved}");
    assert!(saved.contains("backend = \"software\""), "{saved}");
    Ok(())
}

/// SHA-256 of a certificate, as `api.client_fingerprints` lists it (colons, upper case: the
/// way `openssl x509 -fingerprint -sha256` prints it).
fn fingerprint(identity: &ClientIdentity) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(identity.0.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn start_with_fleet_ca(extra: &str) -> Result<(Roomd, Ca, tempfile::TempDir), HarnessError> {
    let fleet = ca("Fleet Manager CA");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_path = dir.path().join("fleet-ca.pem");
    std::fs::write(&ca_path, &fleet.pem).expect("write CA");
    let roomd = Roomd::start_claimed(&format!(
        "[api]\nclient_ca = \"{}\"\nclient_role = \"integrator\"\n{extra}",
        ca_path.display()
    ))?;
    Ok((roomd, fleet, dir))
}

/// A browser offers its client certificate to roomd whichever site makes it send a request, as
/// it sends a cookie: so a certificate's state-changing requests must come from roomd's own
/// origin, as JSON. Tools (no `Origin`, no `Sec-Fetch-Site`) keep working.
#[test]
fn certificate_callers_get_the_csrf_checks_of_sessions() -> Result<(), HarnessError> {
    let (roomd, fleet, _dir) = start_with_fleet_ca("")?;
    let manager = client(&fleet, "fleet-manager-1");
    let volume = |headers: &[(&str, &str)], level: u8| {
        request_with(
            &roomd,
            Some(manager.clone()),
            "POST",
            "/api/v1/commands/audio.volume.set",
            Some(&format!("{{\"level\": {level}}}")),
            headers,
        )
        .expect("mutual TLS handshake")
    };
    let json = ("Content-Type", "application/json");
    let own_origin = format!("https://127.0.0.1:{}", roomd.port());
    for (headers, refused_as) in [
        (vec![json, ("Origin", "https://evil.example")], 403),
        (vec![json, ("Origin", "null")], 403),
        (vec![json, ("Sec-Fetch-Site", "cross-site")], 403),
        (vec![json, ("Sec-Fetch-Site", "same-site")], 403),
        (vec![("Content-Type", "text/plain")], 415),
        (vec![], 415),
    ] {
        let (status, answer) = volume(&headers, 11);
        assert_eq!(status, refused_as, "{headers:?}: {answer}");
    }
    let admin = roomd.admin_token()?;
    let level = |roomd: &Roomd| -> Result<Value, HarnessError> {
        Ok(roomd
            .get("/api/v1/status")
            .bearer(&admin)
            .send()?
            .expect_status(200, "status")?
            .json()?["audio"]["volume"]
            .clone())
    };
    assert_ne!(level(&roomd)?, 11, "a refused request changed the volume");
    // A cross-site form can send an empty body with its own content type: refused as well.
    let muted = |roomd: &Roomd| -> Result<Value, HarnessError> {
        Ok(roomd
            .get("/api/v1/status")
            .bearer(&admin)
            .send()?
            .expect_status(200, "status")?
            .json()?["audio"]["microphones"]["muted"]
            .clone())
    };
    let (status, answer) = request_with(
        &roomd,
        Some(manager.clone()),
        "POST",
        "/api/v1/commands/audio.microphones.mute",
        None,
        &[("Content-Type", "application/x-www-form-urlencoded")],
    )
    .expect("handshake");
    assert_eq!(status, 415, "an empty form post: {answer}");
    assert_eq!(muted(&roomd)?, false, "a refused form post muted the room");
    for (headers, set) in [
        (vec![json], 21),
        (vec![json, ("Origin", own_origin.as_str())], 22),
        (vec![json, ("Sec-Fetch-Site", "same-origin")], 23),
    ] {
        let (status, answer) = volume(&headers, set);
        assert_eq!(status, 200, "{headers:?}: {answer}");
        assert_eq!(level(&roomd)?, set, "{headers:?}");
    }
    Ok(())
}

/// `api.client_fingerprints` lists the certificates still trusted: one left out is refused even
/// though the CA issued it; listed ones work; the list is file-only.
#[test]
fn a_certificate_left_out_of_the_fingerprint_list_is_revoked() -> Result<(), HarnessError> {
    let fleet = ca("Fleet Manager CA");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_path = dir.path().join("fleet-ca.pem");
    std::fs::write(&ca_path, &fleet.pem).expect("write CA");
    let kept = client(&fleet, "fleet-manager-kept");
    let revoked = client(&fleet, "fleet-manager-revoked");
    let roomd = Roomd::start_claimed(&format!(
        "[api]\nclient_ca = \"{}\"\nclient_role = \"integrator\"\n\
         client_fingerprints = [\"{}\"]\n",
        ca_path.display(),
        fingerprint(&kept)
    ))?;
    let (status, who) =
        request(&roomd, Some(kept.clone()), "GET", "/api/v1/session", None).expect("handshake");
    assert_eq!(status, 200, "{who}");
    assert_eq!(who["role"], "integrator", "{who}");
    let (status, answer) =
        request(&roomd, Some(revoked), "GET", "/api/v1/session", None).expect("handshake");
    assert_eq!(status, 401, "a revoked certificate: {answer}");
    assert!(
        answer.to_string().contains("client_fingerprints"),
        "the refusal does not say why: {answer}"
    );
    for role in ["admin", "integrator"] {
        let token = roomd.token_for(role)?;
        let response = roomd
            .request("PATCH", "/api/v1/config")
            .bearer(&token)
            .json(&serde_json::json!({"api": {"client_fingerprints": []}}))
            .send()?;
        assert_eq!(response.status, 422, "{role}: {}", response.text());
    }
    Ok(())
}

/// `api.client_crl`: a certificate the CA revoked ends the handshake; others of the same CA
/// still authenticate; a CRL file without a CRL stops the start naming the file.
#[test]
fn a_certificate_on_the_crl_is_refused_in_the_handshake() -> Result<(), HarnessError> {
    use rcgen::{CertificateRevocationListParams, RevokedCertParams, SerialNumber};
    let fleet = ca("Fleet Manager CA");
    let issue = |name: &str, serial: u64| -> ClientIdentity {
        let mut params = CertificateParams::new(Vec::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.serial_number = Some(SerialNumber::from(serial));
        let key = KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &Issuer::from_params(&fleet.params, &fleet.key))
            .expect("client certificate");
        (cert.der().clone(), key.serialize_der())
    };
    let kept = issue("fleet-manager-kept", 1001);
    let revoked = issue("fleet-manager-revoked", 1002);
    let now = time::OffsetDateTime::now_utc();
    let crl = CertificateRevocationListParams {
        this_update: now - time::Duration::hours(1),
        next_update: now + time::Duration::days(7),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from(1002u64),
            revocation_time: now - time::Duration::minutes(5),
            reason_code: None,
            invalidity_date: None,
        }],
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&Issuer::from_params(&fleet.params, &fleet.key))
    .expect("CRL");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_path = dir.path().join("fleet-ca.pem");
    std::fs::write(&ca_path, &fleet.pem).expect("write CA");
    let crl_path = dir.path().join("fleet-ca.crl.pem");
    std::fs::write(&crl_path, crl.pem().expect("CRL PEM")).expect("write CRL");
    let roomd = Roomd::start_claimed(&format!(
        "[api]\nclient_ca = \"{}\"\nclient_role = \"integrator\"\nclient_crl = \"{}\"\n",
        ca_path.display(),
        crl_path.display()
    ))?;
    let (status, who) =
        request(&roomd, Some(kept), "GET", "/api/v1/session", None).expect("handshake");
    assert_eq!(status, 200, "{who}");
    assert_eq!(who["kind"], "certificate", "{who}");
    let refused = request(&roomd, Some(revoked), "GET", "/api/v1/session", None);
    assert!(
        refused.is_err(),
        "a revoked certificate was served: {refused:?}"
    );
    drop(roomd);

    let empty = dir.path().join("empty.crl.pem");
    std::fs::write(&empty, "not a CRL\n").expect("write");
    match Roomd::start(&format!(
        "[api]\nclient_ca = \"{}\"\nclient_crl = \"{}\"\n",
        ca_path.display(),
        empty.display()
    )) {
        Err(HarnessError::ExitedEarly { stderr, .. }) => assert!(
            stderr.contains("empty.crl.pem") && stderr.contains("api.client_crl"),
            "{stderr}"
        ),
        Ok(_) => panic!("roomd started with a CRL file that holds no CRL"),
        Err(other) => panic!("unexpected failure: {other}"),
    }
    Ok(())
}
