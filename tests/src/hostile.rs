//! A signalling server that misbehaves on purpose: plain HTTP on 127.0.0.1 (roomd accepts http://
//! only for loopback servers), answering each request as the test's closure decides — with any
//! status, headers and body, or not at all. It records what roomd sent, so a test can show that
//! a secret really went out before checking that it never comes back in status or errors.
//!
//! ```no_run
//! use roomd_tests::{HostileAnswer, HostileServer};
//! let server = HostileServer::start(|_request| HostileAnswer::reply(200, "text/plain", "not JSON"))?;
//! let janus_url = server.url("/janus");
//! # Ok::<(), roomd_tests::HarnessError>(())
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::HarnessError;

/// How long the server waits for a request's bytes before giving up on that connection.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a hanging connection checks whether the server is being dropped.
const HANG_POLL: Duration = Duration::from_millis(100);
/// Requests bigger than this are not signalling; the connection is dropped.
const MAX_REQUEST: usize = 1024 * 1024;

/// One request roomd sent.
#[derive(Debug, Clone)]
pub struct HostileRequest {
    pub method: String,
    /// Path and query as sent.
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HostileRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server does with a request.
#[derive(Debug, Clone)]
pub enum HostileAnswer {
    /// Sends this answer (with `Content-Length` and `Connection: close` added) and closes.
    Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Keeps the connection open and says nothing until the server is dropped.
    Hang,
}

impl HostileAnswer {
    /// An answer with status, content type and body.
    pub fn reply(status: u16, content_type: &str, body: &str) -> HostileAnswer {
        HostileAnswer::Reply {
            status,
            headers: vec![("Content-Type".to_owned(), content_type.to_owned())],
            body: body.to_owned(),
        }
    }

    /// This answer with one more header (e.g. `Location`).
    pub fn with_header(self, name: &str, value: &str) -> HostileAnswer {
        match self {
            HostileAnswer::Reply {
                status,
                mut headers,
                body,
            } => {
                headers.push((name.to_owned(), value.to_owned()));
                HostileAnswer::Reply {
                    status,
                    headers,
                    body,
                }
            }
            HostileAnswer::Hang => HostileAnswer::Hang,
        }
    }
}

type Responder = dyn Fn(&HostileRequest) -> HostileAnswer + Send + Sync;

/// The running server; dropping it stops it and closes hanging connections.
pub struct HostileServer {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<HostileRequest>>>,
    /// TCP connections accepted, whether or not a request followed.
    connections: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl HostileServer {
    /// Listens on a free port of 127.0.0.1 and answers every request with `respond`.
    pub fn start(
        respond: impl Fn(&HostileRequest) -> HostileAnswer + Send + Sync + 'static,
    ) -> Result<HostileServer, HarnessError> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| {
            HarnessError::io("cannot listen on 127.0.0.1 for the hostile server", e)
        })?;
        let address = listener
            .local_addr()
            .map_err(|e| HarnessError::io("cannot read the hostile server's address", e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let respond: Arc<Responder> = Arc::new(respond);
        let connections = Arc::new(AtomicUsize::new(0));
        let (stop_c, requests_c, connections_c) =
            (stop.clone(), requests.clone(), connections.clone());
        let thread = std::thread::Builder::new()
            .name("hostile-server".into())
            .spawn(move || accept_loop(&listener, &stop_c, &requests_c, &connections_c, &respond))
            .map_err(|e| HarnessError::io("cannot start the hostile server's thread", e))?;
        Ok(HostileServer {
            address,
            stop,
            requests,
            connections,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// How many TCP connections reached the server so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<HostileRequest> {
        match self.requests.lock() {
            Ok(all) => all.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept so that the loop sees the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    stop: &Arc<AtomicBool>,
    requests: &Arc<Mutex<Vec<HostileRequest>>>,
    accepted: &AtomicUsize,
    respond: &Arc<Responder>,
) {
    let mut connections = Vec::new();
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        accepted.fetch_add(1, Ordering::SeqCst);
        let Ok(stream) = stream else { continue };
        let (stop, requests, respond) = (stop.clone(), requests.clone(), respond.clone());
        connections.push(std::thread::spawn(move || {
            serve(stream, &stop, &requests, &*respond);
        }));
    }
    for connection in connections {
        let _ = connection.join();
    }
}

/// Reads one request, records it and answers it (or hangs). A request that cannot be read is
/// dropped: the test sees that as roomd's request missing from `requests()`.
fn serve(
    stream: TcpStream,
    stop: &AtomicBool,
    requests: &Mutex<Vec<HostileRequest>>,
    respond: &Responder,
) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let Some(request) = read_request(&stream) else {
        return;
    };
    let answer = respond(&request);
    if let Ok(mut all) = requests.lock() {
        all.push(request);
    }
    match answer {
        HostileAnswer::Hang => {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(HANG_POLL);
            }
        }
        HostileAnswer::Reply {
            status,
            headers,
            body,
        } => {
            let mut head = format!("HTTP/1.1 {status} Hostile\r\n");
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str(&format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            ));
            let mut stream = stream;
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
            let _ = stream.flush();
        }
    }
}

fn read_request(stream: &TcpStream) -> Option<HostileRequest> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let method = words.next()?.to_owned();
    let path = words.next()?.to_owned();
    let mut headers = Vec::new();
    let mut read = line.len();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).ok()?;
        read += n;
        if n == 0 || read > MAX_REQUEST {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    if length > MAX_REQUEST {
        return None;
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some(HostileRequest {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
