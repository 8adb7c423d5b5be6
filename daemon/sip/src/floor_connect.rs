//! The TCP connection of a call's BFCP (RFC 4145 roles, RFC 8856): the room connects out to a
//! far end that listens, or takes the one connection of a far end that connects to the room's
//! BFCP port. A listening room takes a connection only from the far end's address (its SDP's
//! `c=`); others are closed at once, and after a few of them, or when the far end has not
//! connected in time, the call goes on without content.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// How long connecting to the far end may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the far end has to connect once the room answered.
pub(crate) const ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections from other addresses taken (and closed) before the room stops listening.
const STRANGERS_MAX: usize = 8;

/// Why the call's BFCP connection did not come about.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FloorConnectError {
    /// The far end did not take the connection.
    #[error("BFCP over TCP to {remote}: {source}")]
    Connect {
        /// The far end's BFCP address.
        remote: SocketAddr,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// No connection in time.
    #[error("BFCP over TCP to {0}: no connection in 5 s")]
    ConnectTimeout(SocketAddr),
    /// The room's listening socket failed.
    #[error("BFCP over TCP: the room's listening port: {0}")]
    Listen(#[source] std::io::Error),
    /// The far end did not connect in time.
    #[error("BFCP over TCP: {0} did not connect to the room within 10 s")]
    NotConnected(IpAddr),
    /// Too many connections came from elsewhere.
    #[error("BFCP over TCP: {STRANGERS_MAX} connections from addresses other than {0}")]
    Strangers(IpAddr),
}

/// A TCP connection to the far end's BFCP at `remote`.
pub(crate) async fn connect(remote: SocketAddr) -> Result<TcpStream, FloorConnectError> {
    tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(remote))
        .await
        .map_err(|_| FloorConnectError::ConnectTimeout(remote))?
        .map_err(|source| FloorConnectError::Connect { remote, source })
}

/// The first connection to `listener` from `from`, within `within`.
pub(crate) async fn accept_from(
    listener: TcpListener,
    from: IpAddr,
    within: Duration,
) -> Result<TcpStream, FloorConnectError> {
    let deadline = tokio::time::Instant::now() + within;
    let mut strangers = 0;
    loop {
        let (stream, peer) = tokio::time::timeout_at(deadline, listener.accept())
            .await
            .map_err(|_| FloorConnectError::NotConnected(from))?
            .map_err(FloorConnectError::Listen)?;
        if peer.ip().to_canonical() == from.to_canonical() {
            return Ok(stream);
        }
        tracing::warn!("SIP call: a BFCP connection from {peer}, not the far end {from}: closed");
        drop(stream);
        strangers += 1;
        if strangers >= STRANGERS_MAX {
            return Err(FloorConnectError::Strangers(from));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_far_ends_address_is_taken() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
        let port = listener.local_addr().expect("address").port();
        let far_end: IpAddr = "127.0.0.1".parse().unwrap();
        let accepting = tokio::spawn(accept_from(listener, far_end, Duration::from_secs(5)));
        // A stranger (another loopback address) first: closed without a byte.
        let stranger = tokio::net::TcpSocket::new_v4().expect("socket");
        stranger
            .bind("127.0.0.2:0".parse().unwrap())
            .expect("127.0.0.2");
        let mut stranger = stranger
            .connect(SocketAddr::new(far_end, port))
            .await
            .expect("connected");
        let mut byte = [0u8; 1];
        let read = tokio::io::AsyncReadExt::read(&mut stranger, &mut byte).await;
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        // Then the far end.
        let ours = TcpStream::connect(SocketAddr::new(far_end, port))
            .await
            .expect("connected");
        let taken = accepting.await.expect("task").expect("accepted");
        assert_eq!(
            taken.peer_addr().expect("peer"),
            ours.local_addr().expect("local")
        );
    }

    #[tokio::test]
    async fn a_far_end_that_never_connects_or_sends_strangers_gives_up() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
        let far_end: IpAddr = "127.0.0.9".parse().unwrap();
        let error = accept_from(listener, far_end, Duration::from_millis(200))
            .await
            .expect_err("nobody came");
        assert!(
            matches!(error, FloorConnectError::NotConnected(_)),
            "{error}"
        );

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
        let address = listener.local_addr().expect("address");
        let accepting = tokio::spawn(accept_from(listener, far_end, Duration::from_secs(5)));
        let mut held = Vec::new();
        for _ in 0..STRANGERS_MAX {
            held.push(TcpStream::connect(address).await.expect("connected"));
        }
        let error = accepting.await.expect("task").expect_err("strangers only");
        assert!(matches!(error, FloorConnectError::Strangers(_)), "{error}");
    }
}
