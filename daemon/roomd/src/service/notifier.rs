//! Sends sd_notify datagrams to one socket, taken from `$NOTIFY_SOCKET` or given by a test.
//!
//! `sd_notify::notify` only reads the socket from the environment, and changing the environment
//! in a threaded test binary is unsound; so the datagram is sent here, with the message formatted
//! by `sd_notify::NotifyState`.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use sd_notify::NotifyState;

pub(super) struct Notifier {
    /// `None` when roomd does not run under systemd: sending is then a no-op.
    socket: Option<OsString>,
}

impl Notifier {
    pub(super) fn from_env() -> Self {
        Self {
            socket: std::env::var_os("NOTIFY_SOCKET").filter(|path| !path.is_empty()),
        }
    }

    #[cfg(test)]
    pub(super) fn to_socket(path: &std::path::Path) -> Self {
        Self {
            socket: Some(path.as_os_str().to_owned()),
        }
    }

    /// Sends the states as one datagram; failures are logged because systemd copes with a
    /// missing notification (start timeout, watchdog) better than roomd could by exiting.
    pub(super) fn send(&self, states: &[NotifyState]) {
        let Some(socket) = &self.socket else {
            return;
        };
        let message: String = states.iter().map(|state| format!("{state}\n")).collect();
        if let Err(error) = send_datagram(socket, message.as_bytes()) {
            tracing::warn!(
                socket = %socket.to_string_lossy(),
                message = %message.trim_end().replace('\n', " "),
                "could not notify systemd: {error}"
            );
        }
    }
}

fn send_datagram(socket: &OsStr, message: &[u8]) -> io::Result<()> {
    let address = socket_address(socket)?;
    let datagram = UnixDatagram::unbound()?;
    let sent = datagram.send_to_addr(message, &address)?;
    if sent == message.len() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("sent {sent} of {} bytes", message.len()),
        ))
    }
}

/// systemd documents `@name` as a socket in the abstract namespace, anything else as a path.
fn socket_address(socket: &OsStr) -> io::Result<SocketAddr> {
    match socket.as_bytes().strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name),
        None => SocketAddr::from_pathname(socket),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver() -> (tempfile::TempDir, UnixDatagram, Notifier) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("read timeout");
        (dir, socket, Notifier::to_socket(&path))
    }

    fn receive(socket: &UnixDatagram) -> String {
        let mut buffer = [0u8; 4096];
        let length = socket.recv(&mut buffer).expect("a notification");
        String::from_utf8_lossy(&buffer[..length]).into_owned()
    }

    #[test]
    fn sends_ready_and_status_in_one_datagram() {
        let (_dir, socket, notifier) = receiver();
        notifier.send(&[NotifyState::Ready, NotifyState::Status("listening")]);
        assert_eq!(receive(&socket), "READY=1\nSTATUS=listening\n");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        let name = format!("roomd-notify-test-{}", std::process::id());
        let address = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract address");
        let socket = UnixDatagram::bind_addr(&address).expect("bind abstract socket");
        let notifier = Notifier {
            socket: Some(OsString::from(format!("@{name}"))),
        };
        notifier.send(&[NotifyState::Stopping]);
        let mut buffer = [0u8; 64];
        let length = socket.recv(&mut buffer).expect("a notification");
        assert_eq!(&buffer[..length], b"STOPPING=1\n");
    }

    #[test]
    fn missing_socket_is_not_fatal() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let notifier = Notifier::to_socket(&dir.path().join("nobody-listens"));
        notifier.send(&[NotifyState::Ready]);
    }

    #[test]
    fn without_socket_nothing_is_sent() {
        let notifier = Notifier { socket: None };
        notifier.send(&[NotifyState::Ready]);
    }
}
