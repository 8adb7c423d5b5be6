//! `make bench` (TLS handshake flood, issue 11 point 6): roomd with its device key in swtpm
//! behind a relay that makes every TPM command take as long as on a hardware TPM (30 ms). One
//! client keeps an established connection and asks `GET /api/v1/status` every 10 ms, first
//! alone, then while one source opens 200 new connections a second (full handshakes, each a
//! signature if roomd lets it through), then while 20 sources open 10 a second each. Prints the
//! established client's p50/p99 in each case and what became of the floods: handshakes per
//! second accepted and refused. Goal: p99 ≤ 50 ms.

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::Context;
use roomd_tests::flood::{EstablishedClient, FloodCounts, HandshakeFlood, Latencies};
use roomd_tests::{Roomd, Swtpm, roomd_bin};

const TPM_LATENCY: Duration = Duration::from_millis(30);
const FLOOD_PER_SECOND: u32 = 200;
const FLOOD_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const MEASURE: Duration = Duration::from_secs(10);
const INTERVAL: Duration = Duration::from_millis(10);
const GOAL_P99_MS: f64 = 50.0;

fn main() -> anyhow::Result<()> {
    println!("roomd TLS handshake flood benchmark");
    println!("binary: {}", roomd_bin()?.display());
    println!(
        "device key in swtpm + {} ms per TPM command (relay); established client: GET \
         /api/v1/status every {} ms for {} s; floods: {FLOOD_PER_SECOND} new full handshakes/s \
         from {FLOOD_SOURCE}, then from 127.0.1.1-20 taking turns",
        TPM_LATENCY.as_millis(),
        INTERVAL.as_millis(),
        MEASURE.as_secs()
    );
    println!();
    let swtpm = Swtpm::start_with_latency(TPM_LATENCY)?;
    let roomd = Roomd::start_claimed(&swtpm.identity_toml())?;
    let token = roomd.token_for("user")?;
    let mut client = EstablishedClient::connect(&roomd, &token).context("established client")?;

    let quiet = client.measure(MEASURE, INTERVAL);
    let one = HandshakeFlood::start(&roomd, FLOOD_SOURCE, FLOOD_PER_SECOND);
    let during_one = client.measure(MEASURE, INTERVAL);
    let (one_counts, one_elapsed) = one.finish();
    // Within each source's budget: now the TPM's bounded queue decides.
    let sources: Vec<Ipv4Addr> = (1..=20).map(|n| Ipv4Addr::new(127, 0, 1, n)).collect();
    let many = HandshakeFlood::from_sources(&roomd, &sources, FLOOD_PER_SECOND);
    let during_many = client.measure(MEASURE, INTERVAL);
    let (many_counts, many_elapsed) = many.finish();

    println!("| established client | answers | errors | p50 (ms) | p99 (ms) |");
    println!("|---|---:|---:|---:|---:|");
    row("without flood", &quiet);
    row("flood from one source", &during_one);
    row("flood from 20 sources", &during_many);
    println!();
    println!(
        "| flood ({FLOOD_PER_SECOND}/s) | attempted/s | accepted/s | refused/s | timed out/s | \
         not sent/s (client busy) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    flood_row("one source", one_counts, one_elapsed);
    flood_row("20 sources", many_counts, many_elapsed);
    println!();
    let mut missed = Vec::new();
    for (name, latencies) in [("one source", &during_one), ("20 sources", &during_many)] {
        let p99 = latencies.quantile_ms(0.99);
        println!(
            "established client p99 during the flood from {name}: {p99:.1} ms (goal ≤ \
             {GOAL_P99_MS} ms)"
        );
        if p99 > GOAL_P99_MS || !latencies.errors.is_empty() {
            missed.push(format!(
                "{name}: p99 {p99:.1} ms, errors {:?}",
                latencies.errors
            ));
        }
    }
    if missed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("missed the goal: {}", missed.join("; "))
    }
}

fn flood_row(name: &str, counts: FloodCounts, elapsed: Duration) {
    let rate = |n: usize| n as f64 / elapsed.as_secs_f64();
    println!(
        "| {name}, {:.1} s | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} |",
        elapsed.as_secs_f64(),
        rate(counts.attempted),
        rate(counts.accepted),
        rate(counts.refused),
        rate(counts.timed_out),
        rate(counts.not_sent)
    );
}

fn row(name: &str, latencies: &Latencies) {
    println!(
        "| {name} | {} | {} | {:.2} | {:.2} |",
        latencies.samples.len(),
        latencies.errors.len(),
        latencies.quantile_ms(0.5),
        latencies.quantile_ms(0.99)
    );
}
