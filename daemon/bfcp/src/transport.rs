//! What a session's messages travel over: a UDP socket towards one far end (messages are
//! datagrams, Ver 2), or a reliable byte stream (TCP, or TLS over TCP that the caller set up;
//! messages are cut from the stream by their length field, Ver 1).

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;

use crate::error::SessionError;
use crate::message::{MAX_MESSAGE_LEN, Version, message_length};

/// A reliable byte stream a session can run over: a `tokio::net::TcpStream`, or a TLS stream
/// on one (e.g. `tokio_rustls`'s client or server stream), or anything else that reads and
/// writes bytes in order.
pub trait BfcpStream: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> BfcpStream for T {}

/// The transport of a session, as the SDP of the call said (`m=application ... UDP/BFCP`,
/// `TCP/BFCP` or `TCP/TLS/BFCP`, RFC 8856).
pub enum Transport {
    /// A bound UDP socket and the far end's address. Datagrams from other addresses are
    /// dropped. Requests are retransmitted until answered (timer T1 of RFC 8855).
    Udp {
        /// The local socket.
        socket: UdpSocket,
        /// The far end's address (`m=` port and `c=` address of its SDP).
        remote: SocketAddr,
    },
    /// A connected stream (the caller connects or accepts, per `a=setup`, and adds TLS if the
    /// SDP says so).
    Tcp(Box<dyn BfcpStream>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Udp { socket, remote } => f
                .debug_struct("Udp")
                .field("local", &socket.local_addr().ok())
                .field("remote", remote)
                .finish(),
            Transport::Tcp(_) => f.write_str("Tcp"),
        }
    }
}

/// How much a stream read takes at once.
const READ_CHUNK: usize = 4096;

/// A transport with what reading it needs.
pub(crate) enum Link {
    Udp {
        socket: UdpSocket,
        remote: SocketAddr,
        datagram: Vec<u8>,
    },
    Stream {
        stream: Box<dyn BfcpStream>,
        /// Octets read but not yet returned as a message; never more than one message plus
        /// one read.
        buffer: Vec<u8>,
    },
}

impl Link {
    pub(crate) fn new(transport: Transport) -> Link {
        match transport {
            Transport::Udp { socket, remote } => Link::Udp {
                socket,
                remote,
                // One more than the largest message, to see a larger datagram as too large
                // rather than cut.
                datagram: vec![0; MAX_MESSAGE_LEN + 1],
            },
            Transport::Tcp(stream) => Link::Stream {
                stream,
                buffer: Vec::with_capacity(READ_CHUNK),
            },
        }
    }

    /// Whether the transport delivers in order and without loss: no retransmissions, no
    /// acknowledgements of what the server sends of its own.
    pub(crate) fn reliable(&self) -> bool {
        matches!(self, Link::Stream { .. })
    }

    /// The version RFC 8855 prescribes for this transport.
    pub(crate) fn version(&self) -> Version {
        if self.reliable() {
            Version::V1
        } else {
            Version::V2
        }
    }

    /// The octets of the next message from the far end. Cancel-safe: what a stream read
    /// brought in stays in the buffer when the caller stops waiting.
    pub(crate) async fn recv(&mut self) -> Result<Vec<u8>, SessionError> {
        match self {
            Link::Udp {
                socket,
                remote,
                datagram,
            } => loop {
                let (length, from) = match socket.recv_from(datagram).await {
                    Ok(received) => received,
                    // An ICMP port unreachable for an earlier datagram: the far end is not
                    // listening yet, or any more. Retransmissions and their bound decide.
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                    Err(e) => return Err(SessionError::io("receiving a datagram", e)),
                };
                // The same address may arrive IPv4-mapped on a dual-stack socket.
                if from.port() != remote.port()
                    || from.ip().to_canonical() != remote.ip().to_canonical()
                {
                    tracing::debug!(%from, expected = %remote, "BFCP datagram from a stranger dropped");
                    continue;
                }
                return Ok(datagram[..length].to_vec());
            },
            Link::Stream { stream, buffer } => loop {
                if let Some(length) = message_length(buffer).map_err(SessionError::Stream)?
                    && buffer.len() >= length
                {
                    return Ok(buffer.drain(..length).collect());
                }
                // Read into a local chunk: if the caller stops waiting, nothing was taken from
                // the stream and the buffer is as it was.
                let mut chunk = [0u8; READ_CHUNK];
                let n = stream
                    .read(&mut chunk)
                    .await
                    .map_err(|e| SessionError::io("reading the stream", e))?;
                if n == 0 {
                    return Err(SessionError::ConnectionClosed);
                }
                buffer.extend_from_slice(&chunk[..n]);
            },
        }
    }

    /// Sends one message's octets.
    pub(crate) async fn send(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        match self {
            Link::Udp { socket, remote, .. } => {
                match socket.send_to(bytes, *remote).await {
                    Ok(_) => {}
                    // As for receiving: a datagram lost to a far end that is not listening
                    // is one more lost datagram, which retransmission covers.
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        tracing::debug!(%remote, "BFCP datagram refused by the far end");
                    }
                    Err(e) => return Err(SessionError::io("sending a datagram", e)),
                }
            }
            Link::Stream { stream, .. } => {
                stream
                    .write_all(bytes)
                    .await
                    .map_err(|e| SessionError::io("writing the stream", e))?;
                stream
                    .flush()
                    .await
                    .map_err(|e| SessionError::io("flushing the stream", e))?;
            }
        }
        Ok(())
    }
}
