//! The bundle: a JSON envelope around a signed payload, and every check it must pass before
//! anything of it is used.
//!
//! ```json
//! {"format": "roomd-provisioning/1", "payload": "<base64 of the payload JSON>",
//!  "signature": "<base64 of the signature over the payload bytes>"}
//! ```
//!
//! The signature covers the payload's bytes exactly as sent (base64-decoded), not a re-encoding
//! of parsed JSON: nothing is parsed before it is verified.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The envelope's `format`.
pub const FORMAT: &str = "roomd-provisioning/1";
/// Largest bundle fetched and parsed.
pub const MAX_BUNDLE_BYTES: u64 = 1024 * 1024;
/// Most device fingerprints one bundle lists (a site's worth of rooms).
pub const MAX_DEVICES: usize = 10_000;
/// Most CA certificates one bundle carries.
pub const MAX_CA_CERTIFICATES: usize = 16;
/// Longest PEM of one CA certificate.
pub const MAX_CA_PEM_BYTES: usize = 16 * 1024;
/// Longest ordinary string in the payload (URLs, identifiers, keys).
pub const MAX_STRING_CHARS: usize = 2048;

/// Why a bundle was refused. Each message names what is wrong, for `status.provisioning.error`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
    /// Not a JSON envelope of the known format.
    #[error("the bundle is not a {FORMAT} envelope: {0}")]
    Envelope(String),
    /// The signature does not verify with `provisioning.trust_key`.
    #[error(
        "the bundle's signature does not verify with provisioning.trust_key (tampered, or \
         signed with another key)"
    )]
    Signature,
    /// The signed payload is not what the format says.
    #[error("the bundle's payload is invalid: {0}")]
    Payload(String),
    /// The bundle is not valid yet.
    #[error("the bundle is not valid before not_before {not_before} (the clock says {now})")]
    NotYetValid {
        /// `not_before` of the payload.
        not_before: String,
        /// The device's time.
        now: String,
    },
    /// The bundle has expired.
    #[error("the bundle expired at not_after {not_after} (the clock says {now})")]
    Expired {
        /// `not_after` of the payload.
        not_after: String,
        /// The device's time.
        now: String,
    },
    /// This device is not in `devices`.
    #[error(
        "the bundle is not for this device: its key SHA-256 {device} is not in the bundle's \
         devices"
    )]
    WrongDevice {
        /// This device's key fingerprint.
        device: String,
    },
    /// The serial is not newer than the one applied.
    #[error("replay: the bundle's serial {serial} is not newer than the applied serial {applied}")]
    Replay {
        /// The bundle's serial.
        serial: u64,
        /// The serial applied before.
        applied: u64,
    },
}

/// The key bundles must be signed with: Ed25519 or ECDSA P-256 (SHA-256, DER signature).
#[derive(Debug, Clone)]
pub struct TrustKey {
    algorithm: &'static dyn ring::signature::VerificationAlgorithm,
    public_key: Vec<u8>,
}

/// OID of Ed25519 (RFC 8410).
const OID_ED25519: &str = "1.3.101.112";
/// OID of an EC public key, and of the P-256 curve (RFC 5480).
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";

impl TrustKey {
    /// Reads a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) of an Ed25519 or P-256 key.
    pub fn from_pem(pem: &[u8]) -> Result<TrustKey, String> {
        use rustls_pki_types::SubjectPublicKeyInfoDer;
        use rustls_pki_types::pem::PemObject;
        let der = SubjectPublicKeyInfoDer::from_pem_slice(pem)
            .map_err(|e| format!("no PEM PUBLIC KEY: {e}"))?;
        TrustKey::from_spki_der(der.as_ref())
    }

    /// Reads a DER SubjectPublicKeyInfo of an Ed25519 or P-256 key.
    pub fn from_spki_der(der: &[u8]) -> Result<TrustKey, String> {
        use x509_parser::prelude::FromDer;
        let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(der)
            .map_err(|e| format!("not a SubjectPublicKeyInfo: {e}"))?;
        let oid = spki.algorithm.algorithm.to_id_string();
        let algorithm: &'static dyn ring::signature::VerificationAlgorithm = match oid.as_str() {
            OID_ED25519 => &ring::signature::ED25519,
            OID_EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string());
                if curve.as_deref() != Some(OID_P256) {
                    return Err("an EC key on another curve than P-256".to_owned());
                }
                &ring::signature::ECDSA_P256_SHA256_ASN1
            }
            other => return Err(format!("a key of algorithm {other}, not Ed25519 or P-256")),
        };
        Ok(TrustKey {
            algorithm,
            public_key: spki.subject_public_key.data.to_vec(),
        })
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        ring::signature::UnparsedPublicKey::new(self.algorithm, &self.public_key)
            .verify(message, signature)
            .is_ok()
    }
}

/// The envelope as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Must be [`FORMAT`].
    pub format: String,
    /// Base64 of the payload's JSON bytes.
    pub payload: String,
    /// Base64 of the signature over those bytes.
    pub signature: String,
}

/// What a verified bundle says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// Grows with every bundle the customer issues; a lower or equal one is a replay.
    pub serial: u64,
    /// RFC 3339: not valid before.
    pub not_before: String,
    /// RFC 3339: not valid after.
    pub not_after: String,
    /// Key SHA-256 (hex) of every device the bundle is for, or `"*"` for any.
    pub devices: Vec<String>,
    /// roomd configuration: a TOML document (string) or a JSON object, applied as one patch.
    #[serde(default)]
    pub config: Option<Value>,
    /// PEM CA certificates, written to `<state_dir>/provisioning/ca.pem`.
    #[serde(default)]
    pub ca_certificates: Vec<String>,
    /// Certificate enrolment with the customer's CA.
    #[serde(default)]
    pub enrolment: Option<Enrolment>,
}

/// `enrolment` of the payload.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrolment {
    /// ACME (RFC 8555) with external account binding.
    pub acme: AcmeEnrolment,
}

/// `enrolment.acme`: where and as whom the room asks the CA for its certificate.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeEnrolment {
    /// The ACME directory URL (https).
    pub directory: String,
    /// External account binding: the key id the CA gave out.
    pub eab_kid: String,
    /// External account binding: the MAC key, base64url.
    pub eab_hmac_key: String,
    /// The DNS name the certificate is for.
    pub identifier: String,
}

/// A payload that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The payload.
    pub payload: Payload,
    /// The configuration as a JSON merge patch (TOML converted); `None` when the bundle has none.
    pub config_patch: Option<Value>,
}

/// Verifies a fetched bundle: envelope, signature, payload shape and bounds, validity at `now`,
/// this device (`device_key_sha256`), and a serial above `applied_serial`. Nothing of the payload
/// is read before the signature verified.
pub fn verify(
    bytes: &[u8],
    trust_key: &TrustKey,
    device_key_sha256: &str,
    now: OffsetDateTime,
    applied_serial: Option<u64>,
) -> Result<Verified, BundleError> {
    let envelope: Envelope =
        serde_json::from_slice(bytes).map_err(|e| BundleError::Envelope(e.to_string()))?;
    if envelope.format != FORMAT {
        return Err(BundleError::Envelope(format!(
            "format {:?}, expected {FORMAT:?}",
            truncated(&envelope.format)
        )));
    }
    let payload_bytes = STANDARD
        .decode(envelope.payload.trim())
        .map_err(|e| BundleError::Envelope(format!("payload is not base64: {e}")))?;
    let signature = STANDARD
        .decode(envelope.signature.trim())
        .map_err(|e| BundleError::Envelope(format!("signature is not base64: {e}")))?;
    if !trust_key.verify(&payload_bytes, &signature) {
        return Err(BundleError::Signature);
    }
    // Signed by the trusted key from here on; still checked, as any input is.
    let payload: Payload =
        serde_json::from_slice(&payload_bytes).map_err(|e| BundleError::Payload(e.to_string()))?;
    check_bounds(&payload)?;
    let not_before = parse_time("not_before", &payload.not_before)?;
    let not_after = parse_time("not_after", &payload.not_after)?;
    let shown_now = now.format(&Rfc3339).unwrap_or_default();
    if now < not_before {
        return Err(BundleError::NotYetValid {
            not_before: payload.not_before.clone(),
            now: shown_now,
        });
    }
    if now > not_after {
        return Err(BundleError::Expired {
            not_after: payload.not_after.clone(),
            now: shown_now,
        });
    }
    let device = device_key_sha256.to_ascii_lowercase();
    if !payload
        .devices
        .iter()
        .any(|d| d == "*" || d.to_ascii_lowercase() == device)
    {
        return Err(BundleError::WrongDevice { device });
    }
    if let Some(applied) = applied_serial
        && payload.serial <= applied
    {
        return Err(BundleError::Replay {
            serial: payload.serial,
            applied,
        });
    }
    let config_patch = match &payload.config {
        None | Some(Value::Null) => None,
        Some(Value::Object(object)) => Some(Value::Object(object.clone())),
        Some(Value::String(text)) => Some(toml_to_patch(text)?),
        Some(_) => {
            return Err(BundleError::Payload(
                "config must be a TOML document (string) or a JSON object".to_owned(),
            ));
        }
    };
    Ok(Verified {
        payload,
        config_patch,
    })
}

fn toml_to_patch(text: &str) -> Result<Value, BundleError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| BundleError::Payload(format!("config: {}", e.message())))?;
    serde_json::to_value(table).map_err(|e| BundleError::Payload(format!("config: {e}")))
}

fn check_bounds(payload: &Payload) -> Result<(), BundleError> {
    let bad = |m: String| Err(BundleError::Payload(m));
    if payload.devices.is_empty() || payload.devices.len() > MAX_DEVICES {
        return bad(format!("devices must list 1 to {MAX_DEVICES} entries"));
    }
    if let Some(d) = payload
        .devices
        .iter()
        .find(|d| *d != "*" && !(d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit())))
    {
        return bad(format!(
            "device {:?} is neither \"*\" nor a key SHA-256 of 64 hex digits",
            truncated(d)
        ));
    }
    if payload.ca_certificates.len() > MAX_CA_CERTIFICATES {
        return bad(format!(
            "ca_certificates holds more than {MAX_CA_CERTIFICATES} certificates"
        ));
    }
    if payload
        .ca_certificates
        .iter()
        .any(|pem| pem.len() > MAX_CA_PEM_BYTES)
    {
        return bad(format!(
            "a CA certificate is longer than {MAX_CA_PEM_BYTES} bytes"
        ));
    }
    if let Some(Enrolment { acme }) = &payload.enrolment {
        for (name, value) in [
            ("directory", &acme.directory),
            ("eab_kid", &acme.eab_kid),
            ("eab_hmac_key", &acme.eab_hmac_key),
            ("identifier", &acme.identifier),
        ] {
            if value.is_empty() || value.chars().count() > MAX_STRING_CHARS {
                return bad(format!(
                    "enrolment.acme.{name} must hold 1 to {MAX_STRING_CHARS} characters"
                ));
            }
        }
    }
    Ok(())
}

fn parse_time(name: &str, value: &str) -> Result<OffsetDateTime, BundleError> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|_| {
        BundleError::Payload(format!(
            "{name} {:?} is not an RFC 3339 time",
            truncated(value)
        ))
    })
}

/// A string from the bundle as shown in a message: at most 80 characters.
fn truncated(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};
    use serde_json::json;

    const DEVICE: &str = "ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01";

    fn key() -> (Ed25519KeyPair, TrustKey) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let mut spki = hex(b"302a300506032b6570032100");
        spki.extend_from_slice(pair.public_key().as_ref());
        let trust = TrustKey::from_spki_der(&spki).unwrap();
        (pair, trust)
    }

    fn hex(h: &[u8]) -> Vec<u8> {
        h.chunks(2)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
            .collect()
    }

    fn bundle(pair: &Ed25519KeyPair, payload: &Value) -> Vec<u8> {
        let bytes = serde_json::to_vec(payload).unwrap();
        let sig = pair.sign(&bytes);
        serde_json::to_vec(&json!({
            "format": FORMAT,
            "payload": STANDARD.encode(&bytes),
            "signature": STANDARD.encode(sig.as_ref()),
        }))
        .unwrap()
    }

    fn payload() -> Value {
        json!({
            "serial": 7,
            "not_before": "2020-01-01T00:00:00Z",
            "not_after": "2999-01-01T00:00:00Z",
            "devices": [DEVICE],
            "config": "[audio]\ndefault_volume = 40\n",
        })
    }

    #[test]
    fn a_good_bundle_verifies_and_its_toml_becomes_a_patch() {
        let (pair, trust) = key();
        let v = verify(
            &bundle(&pair, &payload()),
            &trust,
            DEVICE,
            OffsetDateTime::now_utc(),
            Some(6),
        )
        .unwrap();
        assert_eq!(v.payload.serial, 7);
        assert_eq!(
            v.config_patch,
            Some(json!({"audio": {"default_volume": 40}}))
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        let (pair, trust) = key();
        let now = OffsetDateTime::now_utc();
        let good = bundle(&pair, &payload());
        let mut envelope: Value = serde_json::from_slice(&good).unwrap();
        let mut bytes = STANDARD
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap();
        bytes[20] ^= 1;
        envelope["payload"] = json!(STANDARD.encode(&bytes));
        let tampered = serde_json::to_vec(&envelope).unwrap();
        assert_eq!(
            verify(&tampered, &trust, DEVICE, now, None).unwrap_err(),
            BundleError::Signature
        );
        let (other, _) = key();
        assert_eq!(
            verify(&bundle(&other, &payload()), &trust, DEVICE, now, None).unwrap_err(),
            BundleError::Signature
        );
        let mut expired = payload();
        expired["not_after"] = json!("2021-01-01T00:00:00Z");
        let e = verify(&bundle(&pair, &expired), &trust, DEVICE, now, None).unwrap_err();
        assert!(
            e.to_string().contains("not_after 2021-01-01T00:00:00Z"),
            "{e}"
        );
        let other_device = "cd".repeat(32);
        let e = verify(&bundle(&pair, &payload()), &trust, &other_device, now, None).unwrap_err();
        assert!(e.to_string().contains(&other_device), "{e}");
        let e = verify(&bundle(&pair, &payload()), &trust, DEVICE, now, Some(7)).unwrap_err();
        assert_eq!(
            e,
            BundleError::Replay {
                serial: 7,
                applied: 7
            }
        );
        let mut any = payload();
        any["devices"] = json!(["*"]);
        assert!(verify(&bundle(&pair, &any), &trust, &other_device, now, None).is_ok());
    }
}
