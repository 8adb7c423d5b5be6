//! A TLS handshake flood and an established client that measures itself meanwhile (issue 11,
//! point 6): the flood opens new connections from one loopback source at a fixed rate, each a
//! full handshake (no resumption, so each costs roomd one signature by its device key); the
//! established client keeps one connection and asks for `GET /api/v1/status` on it.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::client::Resumption;
use rustls::{ClientConfig, ClientConnection, HandshakeKind};
use rustls_pki_types::ServerName;

use crate::{HarnessError, Roomd};

/// How long a flood connection may take to connect and finish its handshake.
const FLOOD_TIMEOUT: Duration = Duration::from_secs(3);
/// Flood connections under way at once; a slot with none free is counted as not sent.
const FLOOD_THREADS: usize = 128;

/// What became of the flood's connection attempts.
#[derive(Debug, Default, Clone, Copy)]
pub struct FloodCounts {
    pub attempted: usize,
    /// Handshake finished.
    pub accepted: usize,
    /// Closed or failed by roomd before the handshake finished.
    pub refused: usize,
    /// No answer within `FLOOD_TIMEOUT`.
    pub timed_out: usize,
    /// Every flood thread was still busy with an earlier connection.
    pub not_sent: usize,
}

#[derive(Default)]
struct Counters {
    attempted: AtomicUsize,
    accepted: AtomicUsize,
    refused: AtomicUsize,
    timed_out: AtomicUsize,
    not_sent: AtomicUsize,
}

/// New full TLS handshakes at `per_second`, from one source or taking turns among several,
/// until stopped.
pub struct HandshakeFlood {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    started: Instant,
    threads: Vec<JoinHandle<()>>,
}

impl HandshakeFlood {
    pub fn start(roomd: &Roomd, source: Ipv4Addr, per_second: u32) -> HandshakeFlood {
        HandshakeFlood::from_sources(roomd, &[source], per_second)
    }

    /// `per_second` in all, the sources taking turns (each opens `per_second / sources.len()`).
    pub fn from_sources(roomd: &Roomd, sources: &[Ipv4Addr], per_second: u32) -> HandshakeFlood {
        let mut config = (*roomd.tls_config()).clone();
        config.resumption = Resumption::disabled();
        let config = Arc::new(config);
        let target = SocketAddrV4::new(roomd.address(), roomd.port());
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (slots, inbox) = mpsc::sync_channel::<Ipv4Addr>(0);
        let inbox = Arc::new(Mutex::new(inbox));
        let mut threads: Vec<JoinHandle<()>> = (0..FLOOD_THREADS)
            .map(|_| {
                let (config, counters, inbox) = (config.clone(), counters.clone(), inbox.clone());
                std::thread::spawn(move || {
                    loop {
                        let Ok(Ok(source)) = inbox.lock().map(|inbox| inbox.recv()) else {
                            return;
                        };
                        let counter = match full_handshake(&config, source, target) {
                            Attempt::Accepted => &counters.accepted,
                            Attempt::Refused => &counters.refused,
                            Attempt::TimedOut => &counters.timed_out,
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let interval = Duration::from_secs(1) / per_second.max(1);
        let (pacer_stop, pacer_counters) = (stop.clone(), counters.clone());
        let started = Instant::now();
        let sources = sources.to_vec();
        threads.push(std::thread::spawn(move || {
            let mut next = Instant::now();
            for source in sources.iter().cycle() {
                if pacer_stop.load(Ordering::Acquire) {
                    break;
                }
                pacer_counters.attempted.fetch_add(1, Ordering::Relaxed);
                if slots.try_send(*source).is_err() {
                    pacer_counters.not_sent.fetch_add(1, Ordering::Relaxed);
                }
                next += interval;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            // Dropping `slots` ends the flood threads once their connection is done.
        }));
        HandshakeFlood {
            stop,
            counters,
            started,
            threads,
        }
    }

    /// Stops the flood, waits for its last connections, and says what became of them all.
    pub fn finish(mut self) -> (FloodCounts, Duration) {
        self.stop.store(true, Ordering::Release);
        let elapsed = self.started.elapsed();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        let c = &self.counters;
        let counts = FloodCounts {
            attempted: c.attempted.load(Ordering::Relaxed),
            accepted: c.accepted.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            timed_out: c.timed_out.load(Ordering::Relaxed),
            not_sent: c.not_sent.load(Ordering::Relaxed),
        };
        (counts, elapsed)
    }
}

impl Drop for HandshakeFlood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

enum Attempt {
    Accepted,
    Refused,
    TimedOut,
}

fn full_handshake(config: &Arc<ClientConfig>, source: Ipv4Addr, target: SocketAddrV4) -> Attempt {
    let Ok(mut tcp) = connect_from(source, target) else {
        return Attempt::Refused;
    };
    let _ = tcp.set_read_timeout(Some(FLOOD_TIMEOUT));
    let _ = tcp.set_write_timeout(Some(FLOOD_TIMEOUT));
    let name = ServerName::IpAddress(target.ip().to_owned().into());
    let Ok(mut tls) = ClientConnection::new(config.clone(), name) else {
        return Attempt::Refused;
    };
    while tls.is_handshaking() {
        if let Err(e) = tls.complete_io(&mut tcp) {
            return match e.kind() {
                ErrorKind::WouldBlock | ErrorKind::TimedOut => Attempt::TimedOut,
                _ => Attempt::Refused,
            };
        }
    }
    // Hand the client's Finished over, so that roomd's side of the handshake ends too.
    let _ = tls.complete_io(&mut tcp);
    Attempt::Accepted
}

/// A TCP connection from `source` (any 127.0.0.0/8 address: Linux routes them all to `lo`).
pub fn connect_from(source: Ipv4Addr, target: SocketAddrV4) -> std::io::Result<TcpStream> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
    let fd: OwnedFd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(SocketAddrV4::new(source, 0)),
    )?;
    connect(fd.as_raw_fd(), &SockaddrIn::from(target))?;
    Ok(TcpStream::from(fd))
}

/// One kept-alive TLS connection from 127.0.0.1 asking `GET /api/v1/status`.
pub struct EstablishedClient {
    tls: rustls::StreamOwned<ClientConnection, TcpStream>,
    token: String,
}

impl EstablishedClient {
    /// Connects and asks once (so that the connection is really established).
    pub fn connect(roomd: &Roomd, token: &str) -> Result<EstablishedClient, HarnessError> {
        let failed = |message: String| HarnessError::Transport {
            method: "GET".to_owned(),
            path: "/api/v1/status".to_owned(),
            message,
        };
        let target = SocketAddrV4::new(roomd.address(), roomd.port());
        let tcp = TcpStream::connect(target).map_err(|e| failed(e.to_string()))?;
        tcp.set_nodelay(true).map_err(|e| failed(e.to_string()))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| failed(e.to_string()))?;
        let name = ServerName::IpAddress(roomd.address().into());
        let connection =
            ClientConnection::new(roomd.tls_config(), name).map_err(|e| failed(e.to_string()))?;
        let mut client = EstablishedClient {
            tls: rustls::StreamOwned::new(connection, tcp),
            token: token.to_owned(),
        };
        client.status().map_err(|e| failed(e.to_string()))?;
        Ok(client)
    }

    /// Asks for the status once on the established connection; how long the answer took.
    pub fn status(&mut self) -> std::io::Result<Duration> {
        let start = Instant::now();
        let request = format!(
            "GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\r\n",
            self.token
        );
        self.tls.write_all(request.as_bytes())?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = self.tls.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "roomd closed the established connection",
                ));
            }
            answer.extend_from_slice(&buf[..n]);
            if let Some(done) = complete_response(&answer) {
                return match done {
                    Ok(()) => Ok(start.elapsed()),
                    Err(message) => Err(std::io::Error::other(message)),
                };
            }
        }
    }

    /// Asks every `interval` for `duration`; the latencies, sorted, and the errors.
    pub fn measure(&mut self, duration: Duration, interval: Duration) -> Latencies {
        let end = Instant::now() + duration;
        let mut next = Instant::now();
        let mut latencies = Latencies::default();
        while Instant::now() < end {
            match self.status() {
                Ok(took) => latencies.samples.push(took),
                Err(e) => {
                    latencies.errors.push(e.to_string());
                    // The connection is gone; the rest would all fail the same way.
                    break;
                }
            }
            next += interval;
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        latencies.samples.sort();
        latencies
    }
}

/// `Some` once `answer` holds a whole response: Ok for a 200, the status line otherwise.
fn complete_response(answer: &[u8]) -> Option<Result<(), String>> {
    let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&answer[..head_end]);
    let length = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok());
    let Some(length) = length else {
        return Some(Err(format!("no Content-Length in {head:?}")));
    };
    if answer.len() < head_end + 4 + length {
        return None;
    }
    let status_line = head.lines().next().unwrap_or_default().to_owned();
    Some(if status_line.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(status_line)
    })
}

/// Answer times of the established client, sorted, and what went wrong.
#[derive(Debug, Default)]
pub struct Latencies {
    pub samples: Vec<Duration>,
    pub errors: Vec<String>,
}

impl Latencies {
    /// The `q` quantile (0.5, 0.99) in milliseconds; infinite without samples.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.samples.is_empty() {
            return f64::INFINITY;
        }
        let index = ((self.samples.len() - 1) as f64 * q).round() as usize;
        self.samples[index].as_secs_f64() * 1000.0
    }
}

/// A new connection from `source` with `config` (which may hold a session to resume): how long
/// the handshake took and whether it resumed. `None` if roomd refused it or took over 10 s.
pub fn timed_handshake(
    roomd: &Roomd,
    config: &Arc<ClientConfig>,
    source: Ipv4Addr,
) -> Option<(Duration, HandshakeKind)> {
    let target = SocketAddrV4::new(roomd.address(), roomd.port());
    let start = Instant::now();
    let mut tcp = connect_from(source, target).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let name = ServerName::IpAddress(roomd.address().into());
    let mut tls = ClientConnection::new(config.clone(), name).ok()?;
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp).ok()?;
    }
    let took = start.elapsed();
    // Read the session tickets roomd sends after the handshake, for the next resumption.
    let mut stream = rustls::Stream::new(&mut tls, &mut tcp);
    let _ = stream
        .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    Some((took, tls.handshake_kind()?))
}
