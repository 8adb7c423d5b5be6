//! The real-peer test infrastructure on its own, without roomd: Janus in a network namespace and
//! two Chromium participants in one VideoRoom (with a PIN), over HTTPS verified with a test CA.
//! Each must decode the other's video and receive its audio, over the veth, not loopback; after
//! Janus restarts (same address and ports), both join again by themselves and media flows again.
//! If this fails, the meeting tests cannot tell anything about roomd.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use roomd_tests::{BrowserPeer, Janus, TestNetwork, browser};
use serde_json::Value;

const MEDIA_TIMEOUT: Duration = Duration::from_secs(25);
/// About one second of video at the fake camera's 30 fps.
const FRAMES: u64 = 30;

#[test]
fn two_chromium_participants_see_each_other_through_janus_and_after_its_restart() {
    let started = Instant::now();
    let net = TestNetwork::create().expect("test network");
    let mut janus = Janus::builder(&net)
        .room(4242)
        .pin("2468")
        .start()
        .expect("Janus");
    let alice = BrowserPeer::janus_participant(&janus, "Alice").expect("Alice");
    let bob = BrowserPeer::janus_participant(&janus, "Bob").expect("Bob");

    for peer in [&alice, &bob] {
        let decoded = media_both_ways(peer, 0);
        assert_over_test_network(&decoded, janus.address());
    }
    // Each saw exactly one other feed: its own is not subscribed to.
    for peer in [&alice, &bob] {
        let subscribed: Vec<Value> = peer
            .lines()
            .into_iter()
            .filter(|l| l["event"] == "subscribed")
            .collect();
        assert_eq!(subscribed.len(), 1, "one subscription each: {subscribed:?}");
    }
    eprintln!(
        "two participants decoding each other after {:?}",
        started.elapsed()
    );

    let marks = [alice.line_count(), bob.line_count()];
    let restarted = Instant::now();
    janus.restart().expect("Janus restarted");
    for (peer, mark) in [(&alice, marks[0]), (&bob, marks[1])] {
        let gone = peer
            .wait_for_line_number(mark, "the session lost", MEDIA_TIMEOUT, |l| {
                l["event"] == "disconnected"
            })
            .expect("participants notice the restart");
        let rejoined = peer
            .wait_for_line_number(gone, "joined again", MEDIA_TIMEOUT, |l| {
                l["event"] == "published"
            })
            .expect("participants join again");
        // Only the new connections are in stats lines after the rejoin.
        media_both_ways(peer, rejoined + 1);
    }
    eprintln!(
        "media again {:?} after the Janus restart",
        restarted.elapsed()
    );
}

/// Waits (from line `after` on) for a stats line with video decoded from the other participant,
/// its audio received, and our own video encoded.
fn media_both_ways(peer: &BrowserPeer, after: usize) -> Value {
    peer.wait_for_after(
        after,
        "video and audio from the other participant",
        MEDIA_TIMEOUT,
        |line| {
            line["event"] == "stats"
                && browser::inbound_video_frames(line)
                    .iter()
                    .any(|f| *f > FRAMES)
                && browser::inbound_audio_packets(line).iter().any(|p| *p > 0)
                && browser::outbound_video_frames(line)
                    .iter()
                    .any(|f| *f > FRAMES)
        },
    )
    .expect("media both ways")
}

/// Every ICE pair ends at Janus's address on the test network: nothing went over loopback.
fn assert_over_test_network(stats: &Value, janus: Ipv4Addr) {
    let pairs = browser::selected_pairs(stats);
    assert!(!pairs.is_empty(), "no ICE pair in {stats}");
    for pair in pairs {
        let remote = pair["remote"].as_str().unwrap_or_default();
        assert!(
            remote.starts_with(&format!("{janus}:")),
            "ICE pair {pair} does not go to Janus at {janus}"
        );
    }
}
