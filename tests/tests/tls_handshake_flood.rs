//! A flood of new TLS connections (issue 11, point 6). Every full handshake costs roomd a
//! signature by its device key in the TPM; a hardware TPM takes about 30 ms for one, which the
//! swtpm here gets from a relay that holds every TPM command that long. While one source opens
//! 200 new connections a second, a client on an established connection keeps being answered
//! quickly, a returning client resumes its session (no signature), and a new client from
//! another address still gets its handshake. Spread over many sources, the same flood meets the
//! TPM's bounded queue instead, and the established and returning clients are still served.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use roomd_tests::flood::{EstablishedClient, FloodCounts, HandshakeFlood, timed_handshake};
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

/// What one flood did to the other clients.
struct Outcome {
    flooded_p99_ms: f64,
    flooded_errors: Vec<String>,
    /// The returning client's handshake during the flood.
    resumed: Option<(Duration, HandshakeKind)>,
    /// A new client from `OTHER_SOURCE` during the flood.
    other: Option<(Duration, HandshakeKind)>,
    counts: FloodCounts,
}

/// roomd with its key behind the slow TPM; an established client measured alone, then during
/// `FLOOD_PER_SECOND` new connections a second from `sources` taking turns.
fn flood_from(sources: &[Ipv4Addr]) -> Outcome {
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

    let flood = HandshakeFlood::from_sources(&roomd, sources, FLOOD_PER_SECOND);
    std::thread::sleep(Duration::from_secs(1));
    let flooded = established.measure(Duration::from_secs(5), Duration::from_millis(10));
    let resumed = timed_handshake(&roomd, &returning, HOME);
    let other = timed_handshake(&roomd, &fresh, OTHER_SOURCE);
    let (counts, elapsed) = flood.finish();

    eprintln!(
        "established client p50/p99: {:.1}/{:.1} ms quiet, {:.1}/{:.1} ms flooded ({} answers); \
         flood from {} source(s) over {:.1} s: {counts:?}; returning client: {resumed:?}; new \
         client from another address: {other:?}",
        quiet.quantile_ms(0.5),
        quiet.quantile_ms(0.99),
        flooded.quantile_ms(0.5),
        flooded.quantile_ms(0.99),
        flooded.samples.len(),
        sources.len(),
        elapsed.as_secs_f64()
    );
    Outcome {
        flooded_p99_ms: flooded.quantile_ms(0.99),
        flooded_errors: flooded.errors,
        resumed,
        other,
        counts,
    }
}

fn assert_established_and_returning_clients_served(outcome: &Outcome) {
    assert!(
        outcome.flooded_errors.is_empty(),
        "the established client lost its connection: {:?}",
        outcome.flooded_errors
    );
    assert!(
        outcome.flooded_p99_ms <= MAX_P99_MS,
        "the established client's p99 rose to {:.1} ms during the flood (bound {MAX_P99_MS} ms)",
        outcome.flooded_p99_ms
    );
    let (took, kind) = outcome
        .resumed
        .expect("the returning client connects during the flood");
    assert_eq!(kind, HandshakeKind::Resumed, "the returning client resumes");
    assert!(took < Duration::from_secs(1), "resumption took {took:?}");
    assert!(
        outcome.counts.accepted > 0,
        "some of the flood's handshakes are served: {:?}",
        outcome.counts
    );
}

#[test]
fn an_established_client_is_served_during_a_handshake_flood_from_one_source() {
    let outcome = flood_from(&[FLOOD_SOURCE]);
    assert_established_and_returning_clients_served(&outcome);
    let (took, _) = outcome
        .other
        .expect("a new client from another address connects during the flood");
    assert!(took < Duration::from_secs(2), "its handshake took {took:?}");
    let counts = outcome.counts;
    assert!(
        counts.refused > counts.accepted,
        "most of one source's flood is refused before its handshake: {counts:?}"
    );
}

/// Twenty sources, each within its own budget: now the TPM's bounded queue refuses what it
/// cannot sign in time, and the established client still does not wait for it.
#[test]
fn an_established_client_is_served_during_a_handshake_flood_from_many_sources() {
    let sources: Vec<Ipv4Addr> = (1..=20).map(|n| Ipv4Addr::new(127, 0, 1, n)).collect();
    let outcome = flood_from(&sources);
    assert_established_and_returning_clients_served(&outcome);
    let counts = outcome.counts;
    assert!(
        counts.refused > 0 && counts.timed_out * 10 < counts.attempted,
        "what the TPM cannot sign is refused quickly, not left to time out: {counts:?}"
    );
}
