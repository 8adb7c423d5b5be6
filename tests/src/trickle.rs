//! An HTTPS server on 127.0.0.1 that sends one file slowly: the whole `Content-Length` up front,
//! then the body in small pieces spread over a given time. It keeps a download (and so an update)
//! in progress long enough for a test to see what the room does meanwhile; the plain
//! [`crate::rauc::FileServer`] is done in milliseconds on loopback.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::{HarnessError, ServerCertificate};

/// Pieces the body is sent in.
const PIECES: usize = 20;

pub struct TrickleServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TrickleServer {
    /// Serves `body` to every GET, spread over `duration`.
    pub fn start(
        cert: &ServerCertificate,
        body: Vec<u8>,
        duration: Duration,
    ) -> Result<TrickleServer, HarnessError> {
        let config = cert.rustls_server_config("trickle server")?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| HarnessError::io("cannot listen for the trickle server", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| HarnessError::io("trickle server address", e))?
            .port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_c = stop.clone();
        let body = Arc::new(body);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop_c.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (config, body) = (config.clone(), body.clone());
                std::thread::spawn(move || trickle(stream, config, &body, duration));
            }
        });
        Ok(TrickleServer {
            port,
            stop,
            thread: Some(thread),
        })
    }

    /// `https://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for TrickleServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn trickle(stream: TcpStream, config: Arc<rustls::ServerConfig>, body: &[u8], duration: Duration) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(connection) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(connection, stream);
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16384 {
        match tls.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let header = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    if tls.write_all(header.as_bytes()).is_err() {
        return;
    }
    let piece = body.len().div_ceil(PIECES).max(1);
    for chunk in body.chunks(piece) {
        std::thread::sleep(duration / PIECES as u32);
        if tls.write_all(chunk).and_then(|()| tls.flush()).is_err() {
            return;
        }
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
}
