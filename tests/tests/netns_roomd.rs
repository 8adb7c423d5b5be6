//! roomd on a test network: started inside a namespace, its API (HTTPS and the events
//! WebSocket) is reachable from the test through the veth with a certificate that names the
//! namespace address; and a roomd on the host's veth address is reachable from inside the
//! namespace. This is what the meeting tests build on (two rooms calling each other over
//! non-loopback addresses).

use std::time::Duration;

use roomd_tests::{ADMIN_PASSWORD, ADMIN_USERNAME, HarnessError, Roomd, TestNetwork};
use serde_json::json;

const WS_WAIT: Duration = Duration::from_secs(5);

#[test]
fn roomd_in_a_namespace_is_reachable_through_the_veth() -> Result<(), HarnessError> {
    let net = TestNetwork::create()?;
    let mut inside = Roomd::builder().in_network(&net).start()?;
    inside.claim(ADMIN_USERNAME, ADMIN_PASSWORD)?;
    assert_eq!(inside.address(), net.namespace_address());
    assert!(
        inside
            .base_url()
            .starts_with(&format!("https://{}:", net.namespace_address())),
        "{}",
        inside.base_url()
    );
    let token = inside.token_for("user")?;
    inside
        .get("/api/v1/status")
        .bearer(&token)
        .send()?
        .expect_status(200, "GET status from the namespace")?;
    let mut events = inside.websocket_with_token(&token)?;
    events.send_json(&json!({"type": "subscribe", "status": ["audio"], "events": ["*"]}))?;
    events.wait_for("the current audio status", WS_WAIT, |m| {
        m["type"] == "status" && m["path"] == "audio"
    })?;
    inside.command("audio.volume.set", &json!({ "level": 25 }))?;
    events.wait_for("audio.volume = 25", WS_WAIT, |m| {
        m["type"] == "status" && m["path"] == "audio.volume" && m["value"] == 25
    })?;

    // The other way: a roomd on the host's veth address, asked from inside the namespace.
    let outside = Roomd::builder().listen_on(net.host_address()).start()?;
    let output = net
        .command("curl")
        .args([
            "--silent",
            "--output",
            "/dev/null",
            "--write-out",
            "%{http_code}",
        ])
        .arg("--cacert")
        .arg(outside.cert_path())
        .arg(format!("{}/api/v1/status", outside.base_url()))
        .output()
        .map_err(|e| HarnessError::Config {
            message: format!("cannot run curl in the namespace: {e}"),
        })?;
    let code = String::from_utf8_lossy(&output.stdout);
    // No credentials: roomd refuses, over a verified TLS connection across the veth.
    assert_eq!(code, "401", "curl from the namespace: {output:?}");
    Ok(())
}
