//! Opus protects speech on a lossy path (docs/meetings.md, "Voice survives loss"): two rooms in
//! a direct call over a veth pair, and then a fifth of the packets arriving at the hosting room
//! dropped by nftables on its interface's ingress (the kernel here has no netem). The hosting
//! room's RTCP reports make the calling room's Opus encoder expect that loss (so libopus adds
//! in-band FEC), and the hosting room's decoder rebuilds lost voice frames from it.

use std::process::Command;
use std::time::Duration;

use roomd_tests::{HarnessError, Roomd, TestNetwork, meeting};
use serde_json::{Value, json};

const PIN: &str = "246801";
const STATE_TIMEOUT: Duration = Duration::from_secs(20);
/// Receiver reports come every few seconds; FEC needs a report, then lost packets after it.
const LOSS_TIMEOUT: Duration = Duration::from_secs(45);
/// Percent of packets dropped on the way into the hosting room.
const LOSS_PERCENT: u32 = 20;
/// Lost voice frames the hosting room must have rebuilt from FEC: at 50 packets a second and a
/// fifth of them lost, that is well under two seconds of speech.
const FEC_FRAMES: u64 = 15;

/// A netdev table dropping `percent` of what enters the namespace's interface; removed on drop
/// (and with the namespace).
struct Loss<'a> {
    net: &'a TestNetwork,
}

impl<'a> Loss<'a> {
    fn start(net: &'a TestNetwork, percent: u32) -> Result<Loss<'a>, HarnessError> {
        let device = net.inner_interface();
        let chain = format!("{{ type filter hook ingress device {device} priority 0; }}");
        let limit = percent.to_string();
        for args in [
            vec!["add", "table", "netdev", "roomd_loss"],
            vec!["add", "chain", "netdev", "roomd_loss", "in", &chain],
            vec![
                "add",
                "rule",
                "netdev",
                "roomd_loss",
                "in",
                "numgen",
                "random",
                "mod",
                "100",
                "<",
                &limit,
                "drop",
            ],
        ] {
            let output =
                net.command("nft")
                    .args(&args)
                    .output()
                    .map_err(|e| HarnessError::Config {
                        message: format!("cannot run nft (nftables): {e}"),
                    })?;
            if !output.status.success() {
                return Err(HarnessError::Config {
                    message: format!(
                        "nft {args:?}: {}",
                        String::from_utf8_lossy(&output.stderr).trim()
                    ),
                });
            }
        }
        Ok(Loss { net })
    }
}

impl Drop for Loss<'_> {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "exec", &self.net.name()])
            .args(["nft", "delete", "table", "netdev", "roomd_loss"])
            .status();
    }
}

fn audio_stream<'a>(meeting: &'a Value, direction: &'a str) -> Option<&'a Value> {
    meeting::streams(meeting, direction, "audio").next()
}

fn figure(stream: Option<&Value>, name: &str) -> u64 {
    stream.and_then(|s| s[name].as_u64()).unwrap_or(0)
}

#[test]
fn lost_voice_is_rebuilt_from_fec_sized_to_the_reported_loss() -> Result<(), HarnessError> {
    let net = TestNetwork::create()?;
    let (host, hosted) = meeting::host_room_in(&net, PIN, STATE_TIMEOUT)?;
    let id = hosted["id"].as_str().unwrap_or_default().to_owned();
    // One talker, as in a call: both rooms' simulated microphones play the same syllables, and
    // the caller's echo canceller would take its own voice for the host's echo.
    host.command("audio.microphones.mute", &json!({}))?;
    let caller = Roomd::start_claimed(&format!(
        "[system]\nname = \"Caller room\"\n[meeting]\nca_file = \"{}\"\n",
        host.cert_path().display()
    ))?;
    caller.command(
        "meeting.join",
        &json!({ "target": {
            "kind": "direct",
            "address": format!("{}/join/{id}", host.base_url()),
            "pin": PIN,
            "display_name": "Caller room",
        } }),
    )?;
    let lobby = meeting::wait_for(&host, "the caller in the lobby", STATE_TIMEOUT, |m| {
        meeting::participant(m, "Caller room").is_some_and(|p| p["state"] == "lobby")
    })?;
    let caller_id = meeting::participant(&lobby, "Caller room")
        .and_then(|p| p["id"].as_str())
        .unwrap_or_default()
        .to_owned();
    host.command("meeting.admit", &json!({ "participant": caller_id }))?;
    meeting::wait_for(&caller, "the caller connected", STATE_TIMEOUT, |m| {
        m["state"] == "connected"
    })?;
    // The caller's voice reaches the host, over a clean path: the encoder expects no loss
    // (and so spends nothing on FEC).
    meeting::wait_for(&host, "the caller's voice received", STATE_TIMEOUT, |m| {
        audio_stream(m, "receive")
            .and_then(|s| s["bitrate_kbps"].as_f64())
            .is_some_and(|kbps| kbps > 0.0)
    })?;
    let clean = meeting::status(&caller)?;
    let sent = audio_stream(&clean, "send");
    assert!(sent.is_some(), "the caller sends no audio: {clean}");
    assert_eq!(figure(sent, "expected_loss_percent"), 0, "{clean}");

    let loss = Loss::start(&net, LOSS_PERCENT)?;
    let expecting = meeting::wait_for(
        &caller,
        "the caller's Opus encoder expecting loss",
        LOSS_TIMEOUT,
        // The first report after the drop starts may cover a clean moment too.
        |m| figure(audio_stream(m, "send"), "expected_loss_percent") >= u64::from(LOSS_PERCENT / 2),
    )?;
    let repaired = meeting::wait_for(
        &host,
        "lost voice frames rebuilt from FEC",
        LOSS_TIMEOUT,
        |m| figure(audio_stream(m, "receive"), "fec_recovered") >= FEC_FRAMES,
    )?;
    let received = audio_stream(&repaired, "receive");
    eprintln!(
        "caller expects {} % loss ({} % dropped); host received voice: {} lost, {} rebuilt from \
         FEC, {} concealed",
        figure(audio_stream(&expecting, "send"), "expected_loss_percent"),
        LOSS_PERCENT,
        figure(received, "packets_lost"),
        figure(received, "fec_recovered"),
        figure(received, "concealed"),
    );
    assert!(
        figure(received, "packets_lost") > 0,
        "the host lost no packets: {repaired}"
    );

    // The path is clean again: the expected loss follows the reports back down to nothing.
    drop(loss);
    meeting::wait_for(
        &caller,
        "the caller's Opus encoder expecting no loss again",
        LOSS_TIMEOUT,
        |m| {
            audio_stream(m, "send").is_some()
                && figure(audio_stream(m, "send"), "expected_loss_percent") == 0
        },
    )?;
    caller.command("meeting.leave", &json!({}))?;
    Ok(())
}
