//! SIP against real peers (issue 14): Kamailio as a TLS registrar with digest authentication in
//! a network namespace, roomd registering with it over TLS and verifying its certificate against
//! `sip.ca_file`. Nothing is a stand-in for a SIP peer.

use std::time::{Duration, Instant};

use roomd_tests::sip::{DEAD_TLS_PORT, Kamailio, MAX_EXPIRES_S};
use roomd_tests::{HarnessError, Roomd, TestCa, TestNetwork};
use serde_json::Value;

const USER: &str = "room412";
const PASSWORD: &str = "digest-pw-3f9c1b7e";

fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<Option<T>, HarnessError>,
) -> Result<T, HarnessError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe()? {
            return Ok(value);
        }
        if Instant::now() > deadline {
            return Err(HarnessError::Timeout {
                what: what.to_owned(),
                timeout,
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn sip_status(roomd: &Roomd, token: &str) -> Result<Value, HarnessError> {
    let status = roomd.get("/api/v1/status").bearer(token).send()?.json()?;
    Ok(status["sip"].clone())
}

/// Waits until `status.sip.registration.state` is `state`; returns `status.sip`.
fn wait_for_registration(
    roomd: &Roomd,
    token: &str,
    state: &str,
    timeout: Duration,
) -> Result<Value, HarnessError> {
    wait_for(
        &format!("status.sip.registration.state {state}"),
        timeout,
        || {
            let sip = sip_status(roomd, token)?;
            Ok((sip["registration"]["state"] == state).then_some(sip))
        },
    )
    .map_err(|e| HarnessError::Config {
        message: format!(
            "{e}; status.sip: {}; roomd's stderr:\n{}",
            sip_status(roomd, token).unwrap_or_default(),
            roomd.stderr_text()
        ),
    })
}

/// `[sip]` for roomd, with the CA written next to its configuration.
fn sip_toml(dir: &std::path::Path, ca_pem: &str, lines: &str) -> String {
    let ca_path = dir.join("sip-ca.pem");
    std::fs::write(&ca_path, ca_pem).expect("write the SIP CA");
    format!(
        "[sip]\nuser = \"{USER}\"\nregister_interval_s = 60\nca_file = \"{}\"\n{lines}",
        ca_path.display()
    )
}

#[test]
fn the_room_registers_over_tls_with_digest_again_before_expiry_and_keeps_the_password_secret()
-> Result<(), HarnessError> {
    let net = TestNetwork::create()?;
    let ca = TestCa::new("roomd SIP test CA")?;
    let kamailio = Kamailio::start(&net, &ca, &[(USER, PASSWORD)])?;
    let scratch = tempfile::tempdir().expect("tempdir");
    let toml = sip_toml(
        scratch.path(),
        &ca.cert_pem(),
        &format!(
            "registrar = \"{}\"\npassword = \"{PASSWORD}\"\ndisplay_name = \"Room 4.12\"\n",
            kamailio.sips_uri()
        ),
    );
    let roomd = Roomd::start_claimed(&toml)?;
    let token = roomd.admin_token()?;

    let sip = wait_for_registration(&roomd, &token, "registered", Duration::from_secs(20))?;
    let registration = &sip["registration"];
    assert_eq!(registration["registrar"], kamailio.sips_uri().as_str());
    assert_eq!(registration["via"], kamailio.sips_uri().as_str());
    assert_eq!(registration["error"], "");
    // The registrar grants less than asked; the room takes what was granted.
    assert_eq!(registration["expires_in_s"], MAX_EXPIRES_S);
    let saved = |log: &str| {
        log.lines()
            .filter(|l| l.contains(&format!("REGISTER of sips:{USER}@")) && l.contains("saved"))
            .count()
    };
    let log = kamailio.log_text();
    assert!(saved(&log) >= 1, "Kamailio saved no binding:\n{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("saved") && l.contains("over tls")),
        "the REGISTER did not come over TLS:\n{log}"
    );

    // Registered again before the binding ran out (granted 10 s: again after 7.5 s).
    wait_for(
        "a second REGISTER saved by Kamailio",
        Duration::from_secs(3 * u64::from(MAX_EXPIRES_S)),
        || Ok((saved(&kamailio.log_text()) >= 2).then_some(())),
    )?;
    assert_eq!(
        sip_status(&roomd, &token)?["registration"]["state"],
        "registered"
    );

    // The password is in the sealed store only: not in the file, GET /config, status or logs.
    let config = roomd.get("/api/v1/config").bearer(&token).send()?;
    assert_eq!(config.status, 200);
    let config = config.json()?;
    assert_eq!(config["sip"]["password"], "set");
    let file = std::fs::read_to_string(roomd.config_path()).expect("read roomd.toml");
    let status = roomd.get("/api/v1/status").bearer(&token).send()?.text();
    for (place, text) in [
        ("GET /api/v1/config", config.to_string()),
        ("roomd.toml", file),
        ("GET /api/v1/status", status),
        ("roomd's log", roomd.stderr_text()),
    ] {
        assert!(!text.contains(PASSWORD), "{place} shows the SIP password");
    }
    Ok(())
}

#[test]
fn a_wrong_password_or_an_untrusted_registrar_fails_with_a_clear_error() -> Result<(), HarnessError>
{
    let net = TestNetwork::create()?;
    let ca = TestCa::new("roomd SIP test CA")?;
    let kamailio = Kamailio::start(&net, &ca, &[(USER, PASSWORD)])?;
    let scratch = tempfile::tempdir().expect("tempdir");

    let wrong = "not-the-password-81";
    let toml = sip_toml(
        scratch.path(),
        &ca.cert_pem(),
        &format!(
            "registrar = \"{}\"\npassword = \"{wrong}\"\n",
            kamailio.sips_uri()
        ),
    );
    let roomd = Roomd::start_claimed(&toml)?;
    let token = roomd.admin_token()?;
    let sip = wait_for_registration(&roomd, &token, "failed", Duration::from_secs(20))?;
    let error = sip["registration"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("401") && error.contains("sip.password"),
        "not a clear error: {error}"
    );
    assert!(
        !roomd.stderr_text().contains(wrong),
        "the log shows the password"
    );
    drop(roomd);

    // A registrar whose certificate the configured CA did not issue is not talked to.
    let other_ca = TestCa::new("some other CA")?;
    let toml = sip_toml(
        scratch.path(),
        &other_ca.cert_pem(),
        &format!(
            "registrar = \"{}\"\npassword = \"{PASSWORD}\"\n",
            kamailio.sips_uri()
        ),
    );
    let roomd = Roomd::start_claimed(&toml)?;
    let token = roomd.admin_token()?;
    let sip = wait_for_registration(&roomd, &token, "failed", Duration::from_secs(20))?;
    let error = sip["registration"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("cannot reach") && error.to_lowercase().contains("certificate"),
        "not a clear error: {error}"
    );
    Ok(())
}

#[test]
fn a_proxy_that_is_down_fails_over_to_the_fallback_proxy() -> Result<(), HarnessError> {
    let net = TestNetwork::create()?;
    let ca = TestCa::new("roomd SIP test CA")?;
    let kamailio = Kamailio::start(&net, &ca, &[(USER, PASSWORD)])?;
    let scratch = tempfile::tempdir().expect("tempdir");
    let dead = format!("sips:{}:{DEAD_TLS_PORT}", kamailio.address());
    let toml = sip_toml(
        scratch.path(),
        &ca.cert_pem(),
        &format!(
            "registrar = \"{}\"\nproxy = \"{dead}\"\nfallback_proxy = \"{}\"\npassword = \"{PASSWORD}\"\n",
            kamailio.sips_uri(),
            kamailio.sips_uri()
        ),
    );
    let roomd = Roomd::start_claimed(&toml)?;
    let token = roomd.admin_token()?;
    let sip = wait_for_registration(&roomd, &token, "registered", Duration::from_secs(30))?;
    assert_eq!(sip["registration"]["via"], kamailio.sips_uri().as_str());
    assert!(
        roomd.stderr_text().contains(&dead),
        "the log does not say the proxy was unreachable"
    );
    Ok(())
}
