//! What can go wrong while the harness starts roomd or talks to it. Every variant carries what a
//! person needs to see why a test could not even get to its assertions (usually roomd's stderr).

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(
        "the {name} binary is not at {path}: build it with `cargo build -p roomd --bins` or set {env}",
        path = path.display()
    )]
    BinaryMissing {
        name: &'static str,
        env: &'static str,
        path: PathBuf,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the test configuration is not valid TOML: {message}")]
    Config { message: String },
    #[error("roomd exited before it was ready ({status}); its stderr:\n{stderr}")]
    ExitedEarly { status: ExitStatus, stderr: String },
    #[error("roomd sent no {message} on NOTIFY_SOCKET within {timeout:?}; its stderr:\n{stderr}")]
    NoNotification {
        message: String,
        timeout: Duration,
        stderr: String,
    },
    #[error("roomd did not exit within {timeout:?} after SIGTERM; its stderr:\n{stderr}")]
    NoExit { timeout: Duration, stderr: String },
    #[error("cannot trust roomd's certificate {path}: {message}", path = path.display())]
    Certificate { path: PathBuf, message: String },
    #[error("{method} {path}: {message}")]
    Transport {
        method: String,
        path: String,
        message: String,
    },
    #[error("{what}: expected HTTP {expected}, got {status}: {body}")]
    UnexpectedStatus {
        what: String,
        expected: u16,
        status: u16,
        body: String,
    },
    #[error("{what}: the response is not what the API contract says: {message}")]
    UnexpectedBody { what: String, message: String },
    #[error("the WebSocket handshake was refused with HTTP {status}: {body}")]
    WebSocketRefused { status: u16, body: String },
    #[error("WebSocket: {message}")]
    WebSocket { message: String },
    #[error("`{command}` failed: {message}")]
    CommandFailed { command: String, message: String },
    #[error("{what} failed to start: {message}")]
    PeerStart { what: String, message: String },
    #[error("{peer} did not show {what}: {message}")]
    PeerFailed {
        peer: String,
        what: String,
        message: String,
    },
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout { what: String, timeout: Duration },
}

impl HarnessError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> HarnessError {
        HarnessError::Io {
            what: what.into(),
            source,
        }
    }
}
