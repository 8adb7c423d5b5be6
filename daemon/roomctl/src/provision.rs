//! `roomctl provision`: makes signing keys and signed provisioning bundles
//! (docs/provisioning.md). Works offline; nothing here talks to a room.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::json;

/// The envelope's format, as roomd's provisioning worker expects it.
const FORMAT: &str = "roomd-provisioning/1";
/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the 32 key bytes follow.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// Largest payload file read; roomd refuses bundles over 1 MiB anyway.
const MAX_PAYLOAD_BYTES: u64 = 768 * 1024;

/// Makes an Ed25519 signing key: the private key (PKCS#8 PEM, mode 0600, never overwritten)
/// and the public key (SPKI PEM) for `provisioning.trust_key`.
pub(crate) fn keygen(key_out: &Path, public_out: &Path) -> anyhow::Result<()> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| anyhow!("cannot generate an Ed25519 key"))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| anyhow!("the generated key does not load"))?;
    let mut spki = ED25519_SPKI_PREFIX.to_vec();
    spki.extend_from_slice(pair.public_key().as_ref());
    write_new(
        key_out,
        pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes(),
        0o600,
    )?;
    write_new(public_out, pem("PUBLIC KEY", &spki).as_bytes(), 0o644)?;
    Ok(())
}

/// Signs the payload file (JSON, as the bundle's payload) with a PKCS#8 PEM key (Ed25519 or
/// ECDSA P-256, e.g. from `keygen` or `openssl genpkey`) and returns the bundle. The payload's
/// bytes are signed exactly as they are in the file.
pub(crate) fn sign(key: &Path, payload: &Path) -> anyhow::Result<String> {
    let key_pem =
        std::fs::read(key).with_context(|| format!("cannot read the key {}", key.display()))?;
    let der = pem_body(&key_pem, "PRIVATE KEY")
        .with_context(|| format!("{} holds no PEM PRIVATE KEY (PKCS#8)", key.display()))?;
    let size = std::fs::metadata(payload)
        .with_context(|| format!("cannot read the payload {}", payload.display()))?
        .len();
    if size > MAX_PAYLOAD_BYTES {
        bail!("the payload is larger than {MAX_PAYLOAD_BYTES} bytes");
    }
    let bytes = std::fs::read(payload)
        .with_context(|| format!("cannot read the payload {}", payload.display()))?;
    // The same checks roomd makes first, so that a typo is found here and not on a room.
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("the payload {} is not JSON", payload.display()))?;
    for field in ["serial", "not_before", "not_after", "devices"] {
        if value.get(field).is_none() {
            bail!("the payload has no {field:?}");
        }
    }
    let signature = if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der) {
        pair.sign(&bytes).as_ref().to_vec()
    } else {
        let rng = ring::rand::SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &der, &rng)
            .map_err(|_| anyhow!("{} is neither an Ed25519 nor a P-256 key", key.display()))?;
        pair.sign(&rng, &bytes)
            .map_err(|_| anyhow!("signing failed"))?
            .as_ref()
            .to_vec()
    };
    let bundle = json!({
        "format": FORMAT,
        "payload": STANDARD.encode(&bytes),
        "signature": STANDARD.encode(signature),
    });
    Ok(serde_json::to_string_pretty(&bundle)? + "\n")
}

fn pem(label: &str, der: &[u8]) -> String {
    let encoded = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_body(pem: &[u8], label: &str) -> anyhow::Result<Vec<u8>> {
    let text = std::str::from_utf8(pem).context("not text")?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin).context("no BEGIN line")? + begin.len();
    let stop = start + text[start..].find(&end).context("no END line")?;
    let body: String = text[start..stop].split_whitespace().collect();
    Ok(STANDARD.decode(body)?)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}
