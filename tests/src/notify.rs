//! The receiving end of the systemd notification protocol: a unix datagram socket whose path
//! roomd gets as `$NOTIFY_SOCKET`. Each datagram holds newline-separated `KEY=VALUE` lines.

use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::HarnessError;

pub struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    /// Every datagram received so far, with the time it arrived.
    received: Vec<(Instant, String)>,
}

/// How often a wait looks at something else (e.g. whether roomd is still alive).
const POLL: Duration = Duration::from_millis(20);

impl NotifySocket {
    pub fn bind(path: &Path) -> Result<NotifySocket, HarnessError> {
        let socket = UnixDatagram::bind(path).map_err(|e| {
            HarnessError::io(
                format!("cannot bind the notify socket {}", path.display()),
                e,
            )
        })?;
        socket
            .set_read_timeout(Some(POLL))
            .map_err(|e| HarnessError::io("cannot set the notify socket's timeout", e))?;
        Ok(NotifySocket {
            socket,
            path: path.to_owned(),
            received: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All datagrams received so far.
    pub fn messages(&self) -> Vec<String> {
        self.received.iter().map(|(_, m)| m.clone()).collect()
    }

    /// Forgets what was received, so that a later wait sees only new datagrams.
    pub fn clear(&mut self) {
        self.received.clear();
    }

    /// Waits until a datagram contains the line `line` (e.g. `READY=1`) and returns when it
    /// arrived. `keep_waiting` is asked between reads; returning an error aborts the wait (used
    /// to stop as soon as roomd exits).
    pub fn wait_for_line(
        &mut self,
        line: &str,
        timeout: Duration,
        keep_waiting: impl FnMut() -> Result<(), HarnessError>,
    ) -> Result<Instant, HarnessError> {
        self.wait_for_line_after(line, None, timeout, keep_waiting)
    }

    /// [`NotifySocket::wait_for_line`] counting only datagrams that arrived after `after` (e.g.
    /// the `READY=1` of a restart in place, after its `RELOADING=1`).
    pub fn wait_for_line_after(
        &mut self,
        line: &str,
        after: Option<Instant>,
        timeout: Duration,
        mut keep_waiting: impl FnMut() -> Result<(), HarnessError>,
    ) -> Result<Instant, HarnessError> {
        if let Some(at) = self.arrival_after(line, after) {
            return Ok(at);
        }
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 4096];
        while Instant::now() < deadline {
            match self.socket.recv(&mut buf) {
                Ok(n) => {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    self.received.push((Instant::now(), text));
                    if let Some(at) = self.arrival_after(line, after) {
                        return Ok(at);
                    }
                }
                // Interrupted: a signal reached this thread (e.g. a child process ended); the
                // wait goes on, as for a timeout of the socket's own.
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(HarnessError::io("cannot read the notify socket", e)),
            }
            keep_waiting()?;
        }
        Err(HarnessError::Timeout {
            what: format!("{line} on NOTIFY_SOCKET"),
            timeout,
        })
    }

    fn arrival_after(&self, line: &str, after: Option<Instant>) -> Option<Instant> {
        self.received
            .iter()
            .filter(|(at, _)| after.is_none_or(|after| *at > after))
            .find(|(_, text)| text.lines().any(|l| l == line))
            .map(|(at, _)| *at)
    }
}
