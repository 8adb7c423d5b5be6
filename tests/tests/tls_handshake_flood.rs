//! A flood of new TLS connections (issue 11, point 6). Every full handshake costs roomd a
//! signature by its device key in the TPM; a hardware TPM takes about 30 ms for one, which the
//! swtpm here gets from a relay that holds every TPM command that long. While one source opens
//! 200 new connections a second, a client on an established connection keeps being answered
//! quickly, a returning client resumes its session (no signature), and a new client from
//! another address still gets its handshake.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use roomd_tests::flood::{EstablishedClient, HandshakeFlood, timed_handshake};
use roomd_tests::{Roomd, Swtpm};
use rustls::HandshakeKind;
use rustls::client::Resumption;

const TPM_LATENCY: Duration = Duration::from_millis(30);
const FLOOD_PER_SECOND: u32 = 200;
const FLOOD_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const OTHER_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const HOME: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// The goal is 50 ms (`make bench` prints the figure); the assertion leaves room for a machine
/// shared with other builds. Before the fix, the workers waited for the TPM and the established
/// client's p99 was seconds.
const MAX_P99_MS: f64 = 200.0;

#[test]
fn an_established_client_is_served_during_a_handshake_flood() {
    let swtpm = Swtpm::start_with_latency(TPM_LATENCY).expect("swtpm starts behind the relay");
    let roomd = Roomd::start_claimed(&swtpm.identity_toml()).expect("roomd starts");
    let token = roomd.token_for("user").expect("a user token");

    // A client that was here before: it holds a session ticket from a full handshake.
    let returning = Arc::new((*roomd.tls_config()).clone());
    let (_, kind) = timed_handshake(&roomd, &returning, HOME).expect("first handshake");
    assert_eq!(kind, HandshakeKind::Full);
    let mut fresh = (*roomd.tls_config()).clone();
    fresh.resumption = Resumption::disabled();
    let fresh = Arc::new(fresh);

    let mut established = EstablishedClient::connect(&roomd, &token).expect("connects");
    let quiet = established.measure(Duration::from_secs(2), Duration::from_millis(10));
    assert!(
        quiet.errors.is_empty(),
        "without a flood: {:?}",
        quiet.errors
    );

    let flood = HandshakeFlood::start(&roomd, FLOOD_SOURCE, FLOOD_PER_SECOND);
    std::thread::sleep(Duration::from_secs(1));
    let flooded = established.measure(Duration::from_secs(5), Duration::from_millis(10));
    let resumed = timed_handshake(&roomd, &returning, HOME);
    let other = timed_handshake(&roomd, &fresh, OTHER_SOURCE);
    let (counts, elapsed) = flood.finish();

    eprintln!(
        "established client p50/p99: {:.1}/{:.1} ms quiet, {:.1}/{:.1} ms flooded ({} answers); \
         flood over {:.1} s: {counts:?}; returning client: {resumed:?}; new client from \
         another address: {other:?}",
        quiet.quantile_ms(0.5),
        quiet.quantile_ms(0.99),
        flooded.quantile_ms(0.5),
        flooded.quantile_ms(0.99),
        flooded.samples.len(),
        elapsed.as_secs_f64()
    );
    assert!(
        flooded.errors.is_empty(),
        "the established client lost its connection: {:?}",
        flooded.errors
    );
    assert!(
        flooded.quantile_ms(0.99) <= MAX_P99_MS,
        "the established client's p99 rose to {:.1} ms during the flood (bound {MAX_P99_MS} ms)",
        flooded.quantile_ms(0.99)
    );
    let (took, kind) = resumed.expect("the returning client connects during the flood");
    assert_eq!(kind, HandshakeKind::Resumed, "the returning client resumes");
    assert!(took < Duration::from_secs(1), "resumption took {took:?}");
    let (took, _) = other.expect("a new client from another address connects during the flood");
    assert!(took < Duration::from_secs(2), "its handshake took {took:?}");
    assert!(
        counts.accepted > 0,
        "some of the flood's handshakes are served: {counts:?}"
    );
    assert!(
        counts.refused > counts.accepted,
        "most of one source's flood is refused: {counts:?}"
    );
}
