//! Logging: the systemd journal when stderr is connected to it, readable text on stderr otherwise,
//! and the most recent records in memory for the API ([`RecentLog`]).
//!
//! `RUST_LOG` (tracing's filter syntax, e.g. `roomd=debug,actix_web=warn`) overrides the default
//! level.

mod recent;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use recent::{
    CONSOLE_ONLY_TARGET, LogRecord, MAX_MESSAGE_BYTES, PRIVATE_FIELDS, RECENT_LOG_CAPACITY,
    RecentLog, level_str, parse_level,
};

/// Why [`init`] could not install logging.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("RUST_LOG={value:?} is not a valid log filter: {source}")]
    /// `RUST_LOG` is set but does not parse; it is not silently ignored.
    InvalidRustLog {
        /// The variable's value, trimmed.
        value: String,
        /// What the parser objected to.
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("default log level {value:?} is not a valid log filter: {source}")]
    /// The default level from the configuration does not parse.
    InvalidDefaultLevel {
        /// The level as given.
        value: String,
        /// What the parser objected to.
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("logging is already initialised (logging::init was called twice)")]
    /// A global subscriber is already installed.
    AlreadyInitialised(#[source] tracing_subscriber::util::TryInitError),
}

/// Installs the global subscriber. Fails instead of panicking when one is already installed.
/// Returns the buffer of recent records that `GET /api/v1/logs` reads.
pub fn init(default_level: &str) -> Result<RecentLog, LoggingError> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = filter(rust_log.as_deref(), default_level)?;
    let (journal, journal_error) = match stderr_is_journal().then(tracing_journald::layer) {
        Some(Ok(layer)) => (Some(layer.with_syslog_identifier("roomd".to_owned())), None),
        Some(Err(error)) => (None, Some(error)),
        None => (None, None),
    };
    // Without the journal's socket, text on stderr still reaches the journal through the stream.
    let text = journal.is_none().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
    });
    let recent = RecentLog::new(RECENT_LOG_CAPACITY);
    tracing_subscriber::registry()
        .with(filter)
        .with(journal)
        .with(text)
        .with(recent.layer())
        .try_init()
        .map_err(LoggingError::AlreadyInitialised)?;
    if let Some(error) = journal_error {
        tracing::warn!(
            "cannot open the systemd journal's socket ({error}); logging text to stderr"
        );
    }
    Ok(recent)
}

/// Targets whose messages describe misbehaving clients, not roomd.
const QUIET_CLIENT_ERRORS: &str = "actix_http::h1::dispatcher=off";

/// rsipstack (SIP, roomd-sip) logs every SIP message it sends and receives at INFO, and its
/// dialogs at DEBUG: those carry a call's SDES-SRTP keys (`a=crypto` in the SDP) and digest
/// responses. Held at WARN whatever RUST_LOG says, so that secrets never reach the log.
const SIP_MESSAGES: &str = "rsipstack=warn";

/// A set, non-empty `RUST_LOG` wins; a broken one is an error rather than silently ignored, so an
/// operator who asked for debug output learns why they do not get it.
fn filter(rust_log: Option<&str>, default_level: &str) -> Result<EnvFilter, LoggingError> {
    let sip_messages = || SIP_MESSAGES.parse().expect("a valid directive");
    match rust_log.map(str::trim).filter(|value| !value.is_empty()) {
        Some(value) => EnvFilter::try_new(value)
            .map(|filter| filter.add_directive(sip_messages()))
            .map_err(|source| LoggingError::InvalidRustLog {
                value: value.to_owned(),
                source,
            }),
        // actix reports every malformed request from a client at ERROR: that is the client's
        // problem, and logging it would let anyone on the network flood the journal.
        None => EnvFilter::try_new(format!(
            "{default_level},{QUIET_CLIENT_ERRORS},{SIP_MESSAGES}"
        ))
        .map_err(|source| LoggingError::InvalidDefaultLevel {
            value: default_level.to_owned(),
            source,
        }),
    }
}

/// systemd sets `$JOURNAL_STREAM` to `<device>:<inode>` of the stream it connected to stdout and
/// stderr; it only counts when stderr still is that stream (not redirected by a shell or parent).
fn stderr_is_journal() -> bool {
    let Some(journal_stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stderr) = nix::sys::stat::fstat(std::io::stderr()) else {
        return false;
    };
    journal_stream.to_str() == Some(&format!("{}:{}", stderr.st_dev, stderr.st_ino))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_overrides_the_default() {
        let filter = filter(Some("roomd=debug"), "info").expect("valid filter");
        assert_eq!(filter.to_string(), "rsipstack=warn,roomd=debug");
        // Whatever RUST_LOG says, SIP messages (SRTP keys in their SDP) stay out.
        let traced = super::filter(Some("rsipstack=trace,info"), "info").expect("valid filter");
        assert_eq!(traced.to_string(), "rsipstack=warn,info");
    }

    #[test]
    fn empty_rust_log_uses_the_default() {
        let filter = filter(Some("  "), "warn").expect("valid filter");
        assert_eq!(
            filter.to_string(),
            "actix_http::h1::dispatcher=off,rsipstack=warn,warn"
        );
    }

    #[test]
    fn invalid_rust_log_is_named() {
        let error = filter(Some("roomd=loud"), "info").expect_err("invalid level");
        assert!(
            matches!(error, LoggingError::InvalidRustLog { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("roomd=loud"), "{error}");
    }

    #[test]
    fn invalid_default_level_is_named() {
        let error = filter(None, "roomd=loud").expect_err("invalid level");
        assert!(
            matches!(error, LoggingError::InvalidDefaultLevel { .. }),
            "{error}"
        );
    }

    #[test]
    fn second_init_is_an_error_not_a_panic() {
        // The first call may already fail if another test installed a subscriber; the second
        // must fail either way. Level "off" keeps other tests' output quiet (unless RUST_LOG
        // asks for logs).
        let _ = init("off");
        let second = init("off");
        assert!(second.is_err(), "a second init must be refused");
    }
}
