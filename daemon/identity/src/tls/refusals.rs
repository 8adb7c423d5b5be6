//! Connections refused before or during the TLS handshake, counted and logged at most once per
//! `LOG_EVERY`: a flood must not turn into a flood of log lines.

use roomd_base::sync::lock;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const LOG_EVERY: Duration = Duration::from_secs(10);

/// Why a new connection got no handshake.
#[derive(Debug, Clone, Copy)]
pub(super) enum Refusal {
    /// Its source opened new connections faster than its handshake budget.
    SourceRate,
    /// Too many handshakes were in progress at once.
    TooManyHandshakes,
    /// The TPM already had as many handshake signatures waiting as it may.
    TpmBusy,
}

#[derive(Default)]
struct Counts {
    source_rate: u64,
    too_many_handshakes: u64,
    tpm_busy: u64,
    since: Option<Instant>,
}

static COUNTS: Mutex<Counts> = Mutex::new(Counts {
    source_rate: 0,
    too_many_handshakes: 0,
    tpm_busy: 0,
    since: None,
});

/// Counts one refusal; logs the counts of the last period once it is over.
pub(super) fn note(refusal: Refusal) {
    let mut counts = lock(&COUNTS);
    match refusal {
        Refusal::SourceRate => counts.source_rate += 1,
        Refusal::TooManyHandshakes => counts.too_many_handshakes += 1,
        Refusal::TpmBusy => counts.tpm_busy += 1,
    }
    let now = Instant::now();
    // Only the very first refusal is logged at once; after that a period starts at each log
    // line, so that a flood gives one line per `LOG_EVERY`.
    let first = counts.since.is_none();
    let since = *counts.since.get_or_insert(now);
    if first || now.duration_since(since) >= LOG_EVERY {
        tracing::warn!(
            "refused new TLS connections in the last {} s: {} over a source's handshake rate, \
             {} with too many handshakes in progress, {} with the TPM busy signing",
            now.duration_since(since).as_secs(),
            counts.source_rate,
            counts.too_many_handshakes,
            counts.tpm_busy
        );
        *counts = Counts {
            since: Some(now),
            ..Counts::default()
        };
    }
}
