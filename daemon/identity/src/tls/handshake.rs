//! TLS handshakes of the API, off the HTTP workers.
//!
//! A full handshake signs with the device key, and with the key in the TPM that blocks the thread
//! for a TPM command (tens of milliseconds on hardware, queued behind every other signature).
//! rustls signs synchronously inside the handshake, so wherever the handshake runs, a thread
//! waits. It must not be an HTTP worker: those also serve the established connections, which a
//! flood of new ones would otherwise starve. So the worker only accepts the TCP connection,
//! checks the source's budget (`SourceLimit`), and hands the socket to a small runtime of its own
//! whose threads run handshakes; the finished TLS stream comes back to the worker.
//!
//! Bounds: new connections per source (token bucket), handshakes in progress at once, the
//! handshake's duration, and the TPM's handshake queue (`Tpm::sign_digest_for_handshake`).
//! Returning clients resume (see `server_config`) and cost no signature.

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use actix_tls::accept::rustls_0_23::TlsStream;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::TlsError;
use super::refusals::{self, Refusal};
use super::source_limit::SourceLimit;

/// Threads that run handshakes (a thread waiting for the TPM hands its other handshakes on).
const HANDSHAKE_THREADS: usize = 2;
/// Handshakes in progress at once; a connection beyond that is closed before its handshake.
pub(super) const MAX_HANDSHAKES_IN_PROGRESS: usize = 64;
/// A client must finish its handshake within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a connection was closed before or during its TLS handshake.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The source address has used up its budget of new connections (token bucket).
    #[error("refused a connection from {peer}: it opens new connections too fast")]
    SourceRate {
        /// The client's address.
        peer: SocketAddr,
    },
    /// `MAX_HANDSHAKES_IN_PROGRESS` (64) handshakes are already running.
    #[error(
        "refused a connection from {peer}: {MAX_HANDSHAKES_IN_PROGRESS} handshakes in progress"
    )]
    TooManyHandshakes {
        /// The client's address.
        peer: SocketAddr,
    },
    /// The handshake failed (a TLS error or a closed socket), or the socket could not be moved
    /// between runtimes.
    #[error("TLS handshake with {peer} failed: {source}")]
    Failed {
        /// The client's address.
        peer: SocketAddr,
        /// The I/O or TLS error.
        source: std::io::Error,
    },
    /// The client did not finish its handshake within 5 s.
    #[error("TLS handshake with {peer} took longer than {HANDSHAKE_TIMEOUT:?}")]
    TimedOut {
        /// The client's address.
        peer: SocketAddr,
    },
    /// The accepted socket has no readable peer address (it was already closed).
    #[error("cannot read the connection's peer address: {0}")]
    NoPeer(std::io::Error),
    /// The handshake task did not finish: the handshake runtime stopped or the task panicked.
    #[error("the TLS handshake threads have stopped")]
    Stopped,
}

/// Owns the handshake runtime; stops it without waiting when the last user is gone (dropping a
/// tokio runtime the ordinary way inside an async worker would panic).
struct HandshakeRuntime(Option<tokio::runtime::Runtime>);

impl Drop for HandshakeRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Accepts the API's TLS connections. One per server, shared by its workers.
pub struct Handshakes {
    acceptor: tokio_rustls::TlsAcceptor,
    /// Runs as long as the server has a worker (`handle` spawns on it).
    _runtime: HandshakeRuntime,
    handle: tokio::runtime::Handle,
    sources: SourceLimit,
    in_progress: Arc<Semaphore>,
}

impl Handshakes {
    /// Starts the handshake threads for `config`. Fails only if the threads cannot start.
    pub fn new(config: rustls::ServerConfig) -> Result<Arc<Handshakes>, TlsError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(HANDSHAKE_THREADS)
            // Threads that wait for the TPM (`block_in_place` in `TpmKey`): no more than the
            // TPM's handshake queue holds.
            .max_blocking_threads(crate::tpm::MAX_WAITING_HANDSHAKE_SIGNATURES)
            .thread_name("tls-handshake")
            .enable_io()
            .enable_time()
            .build()
            .map_err(TlsError::HandshakeThreads)?;
        let handle = runtime.handle().clone();
        Ok(Arc::new(Handshakes {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            _runtime: HandshakeRuntime(Some(runtime)),
            handle,
            sources: SourceLimit::default(),
            in_progress: Arc::new(Semaphore::new(MAX_HANDSHAKES_IN_PROGRESS)),
        }))
    }

    /// Runs the handshake of a connection a worker accepted, on the handshake threads, and gives
    /// the TLS stream back registered with the calling worker. A refused connection is closed.
    pub async fn accept(
        &self,
        tcp: TcpStream,
    ) -> Result<(TlsStream<TcpStream>, SocketAddr), HandshakeError> {
        let peer = tcp.peer_addr().map_err(HandshakeError::NoPeer)?;
        if !self.sources.admit(peer.ip()) {
            refusals::note(Refusal::SourceRate);
            return Err(HandshakeError::SourceRate { peer });
        }
        let Ok(permit) = self.in_progress.clone().try_acquire_owned() else {
            refusals::note(Refusal::TooManyHandshakes);
            return Err(HandshakeError::TooManyHandshakes { peer });
        };
        let failed = |source| HandshakeError::Failed { peer, source };
        // Small responses leave in several TLS writes; with Nagle on, the last can wait for the
        // client's delayed ACK (40 ms).
        tcp.set_nodelay(true).map_err(failed)?;
        // The socket leaves this worker's reactor and joins the handshake runtime's.
        let socket = tcp.into_std().map_err(failed)?;
        let acceptor = self.acceptor.clone();
        let handshake = self.handle.spawn(async move {
            let _permit = permit;
            let tcp = TcpStream::from_std(socket)?;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(done) => done.map(Some),
                Err(_) => Ok(None),
            }
        });
        let mut tls = match handshake.await {
            Ok(Ok(Some(tls))) => tls,
            Ok(Ok(None)) => return Err(HandshakeError::TimedOut { peer }),
            Ok(Err(source)) => return Err(failed(source)),
            Err(_) => return Err(HandshakeError::Stopped),
        };
        // Back to this worker's reactor, which serves the connection from now on: a second
        // descriptor of the same socket is registered here, then the first one is closed (and
        // leaves the handshake runtime). rustls keeps whatever it already read.
        let (tcp, _) = tls.get_mut();
        let duplicate = tcp.as_fd().try_clone_to_owned().map_err(failed)?;
        let here = TcpStream::from_std(std::net::TcpStream::from(duplicate)).map_err(failed)?;
        drop(std::mem::replace(tcp, here));
        Ok((TlsStream::from(tls), peer))
    }
}
