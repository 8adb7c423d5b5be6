//! `make bench` (identity part): full TLS handshakes per second against roomd with its key in a
//! software TPM (swtpm) and with a software key, in the same run, and the latency of one
//! signature by each key. Every handshake is a full one (no session resumption), so each costs
//! one signature by the server's key; that is what the TPM makes slower.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use roomd_identity::tpm::{DEVICE_KEY_HANDLE, Tpm};
use roomd_tests::{Roomd, Swtpm, roomd_bin};
use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use sha2::{Digest, Sha256};

const HANDSHAKE_TIME: Duration = Duration::from_secs(5);
const PARALLEL_CLIENTS: usize = 4;
const SIGNATURES: usize = 300;

fn main() -> anyhow::Result<()> {
    let binary = roomd_bin()?;
    println!("roomd identity benchmark");
    println!("binary: {}", binary.display());
    println!(
        "handshakes: full TLS 1.3 handshakes (no resumption) + GET /api/v1/health, {} s each, \
         1 and {PARALLEL_CLIENTS} clients",
        HANDSHAKE_TIME.as_secs()
    );
    println!();

    let swtpm = Swtpm::start()?;
    let tpm_room = Roomd::start(&swtpm.identity_toml())?;
    let software_room = Roomd::start("[identity]\nbackend = \"software\"\n")?;
    println!("| key | clients | handshakes/s | mean handshake (ms) |");
    println!("|---|---:|---:|---:|");
    for (name, room) in [("TPM (swtpm)", &tpm_room), ("software", &software_room)] {
        for clients in [1, PARALLEL_CLIENTS] {
            let (count, elapsed) = handshakes(room, clients)?;
            let rate = count as f64 / elapsed.as_secs_f64();
            println!(
                "| {name} | {clients} | {rate:.0} | {:.2} |",
                1000.0 * clients as f64 / rate
            );
        }
    }
    drop(tpm_room);

    println!();
    println!("| key | signatures | p50 (ms) | p99 (ms) |");
    println!("|---|---:|---:|---:|");
    // roomd has stopped: swtpm serves one client at a time.
    let tpm = Tpm::open(&swtpm.tcti(), DEVICE_KEY_HANDLE).context("open the swtpm")?;
    let tpm_latencies = latencies(|i| {
        tpm.sign_digest(Sha256::digest(i.to_be_bytes()).into())
            .map(|_| ())
            .map_err(anyhow::Error::from)
    })?;
    print_latencies("TPM (swtpm)", &tpm_latencies);
    let rng = ring::rand::SystemRandom::new();
    let alg = &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING;
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng)
        .map_err(|_| anyhow::anyhow!("ring cannot make a key"))?;
    let key = ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng)
        .map_err(|_| anyhow::anyhow!("ring refuses its own key"))?;
    let software_latencies = latencies(|i| {
        key.sign(&rng, &i.to_be_bytes())
            .map(|_| ())
            .map_err(|_| anyhow::anyhow!("ring cannot sign"))
    })?;
    print_latencies("software (ring, as rustls)", &software_latencies);
    Ok(())
}

/// Full handshakes with `clients` threads for `HANDSHAKE_TIME`; (count, elapsed).
fn handshakes(room: &Roomd, clients: usize) -> anyhow::Result<(usize, Duration)> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(room.cert_path())?)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    let config = Arc::new(config);
    let port = room.port();
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let config = config.clone();
            std::thread::spawn(move || -> anyhow::Result<usize> {
                let mut count = 0;
                while started.elapsed() < HANDSHAKE_TIME {
                    one_request(&config, port)?;
                    count += 1;
                }
                Ok(count)
            })
        })
        .collect();
    let mut total = 0;
    for thread in threads {
        total += thread
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
    }
    Ok((total, started.elapsed()))
}

fn one_request(config: &Arc<ClientConfig>, port: u16) -> anyhow::Result<()> {
    let name = ServerName::try_from("127.0.0.1")?;
    let connection = ClientConnection::new(config.clone(), name)?;
    let socket = TcpStream::connect(("127.0.0.1", port))?;
    let mut tls = StreamOwned::new(connection, socket);
    tls.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    if !answer.starts_with(b"HTTP/1.1 200") {
        bail!("unexpected answer: {}", String::from_utf8_lossy(&answer));
    }
    Ok(())
}

fn latencies(mut sign: impl FnMut(usize) -> anyhow::Result<()>) -> anyhow::Result<Vec<Duration>> {
    let mut all = Vec::with_capacity(SIGNATURES);
    for i in 0..SIGNATURES {
        let start = Instant::now();
        sign(i)?;
        all.push(start.elapsed());
    }
    all.sort();
    Ok(all)
}

fn print_latencies(name: &str, sorted: &[Duration]) {
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    println!(
        "| {name} | {} | {:.3} | {:.3} |",
        sorted.len(),
        at(0.5),
        at(0.99)
    );
}
