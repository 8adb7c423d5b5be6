//! Sender keys bound to identity: how a participant's SFrame key reaches the others.
//!
//! 1. At the start of a meeting each participant makes a P-256 key pair for this meeting only
//!    (its *meeting key*) and sends an [`Announce`]: its participant id, its identity (a room's
//!    certificate chain from the TPM device key, or a browser's public key), the meeting key, and
//!    a signature by its identity key over all of that and the meeting id. [`verify_announce`]
//!    checks it; a tampered or replayed-elsewhere announce is refused.
//! 2. A participant's sender key (32 random bytes, an SFrame key id) goes to each other verified
//!    participant in a [`KeyGrant`]: HPKE base mode (RFC 9180; DHKEM(P-256), HKDF-SHA256,
//!    AES-256-GCM) to that participant's meeting key, bound to the meeting, both participant ids
//!    and the key id. Only the holder of that meeting key can open it.
//! 3. On a leave the remaining participants make new sender keys and grant them only to each
//!    other; the one who left holds no meeting key that opens them. Meeting keys live in memory
//!    for one meeting, so a key stolen later opens no meeting before it (forward secrecy).
//!
//! Nothing here travels through roomd's API or logs: [`KeyGrant`] and [`KeySecret`] print no key
//! bytes.

use std::fmt;

use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::DhP256HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::KeySecret;

type Kem = DhP256HkdfSha256;

/// Domain separation of the announce signature.
const ANNOUNCE_CONTEXT: &[u8] = b"roomd-e2ee announce v1";
/// HPKE `info` prefix of a key grant.
const GRANT_CONTEXT: &[u8] = b"roomd-e2ee grant v1";
/// Longest participant id or meeting id, in bytes.
pub const MAX_ID_LEN: usize = 256;
/// Most certificates in an identity chain, and the largest one.
pub const MAX_CHAIN: usize = 4;
/// Largest certificate accepted, in bytes.
pub const MAX_CERT_LEN: usize = 8192;

/// Why an announce or a key grant was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The identity signature does not verify: tampered, another meeting, or another key.
    #[error("the announce of {participant} is not signed by its identity key for this meeting")]
    BadSignature {
        /// Who claimed to send it.
        participant: String,
    },
    /// The identity is not a P-256 key (or a certificate of one).
    #[error("the identity of {participant} is not a P-256 key: {reason}")]
    BadIdentity {
        /// Who.
        participant: String,
        /// What is wrong.
        reason: String,
    },
    /// The meeting key is not a P-256 point.
    #[error("the meeting key of {participant} is not a P-256 public key")]
    BadMeetingKey {
        /// Who.
        participant: String,
    },
    /// A field is longer or has more entries than allowed.
    #[error("{field} exceeds its limit of {limit}")]
    TooLarge {
        /// Which field.
        field: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A grant that is not from the peer it was opened for, or not for us.
    #[error("a key grant from {from} to {to} is not for this participant or not from that peer")]
    Misaddressed {
        /// Its sender.
        from: String,
        /// Its addressee.
        to: String,
    },
    /// The grant does not open: not sealed to our meeting key, or altered.
    #[error("the key grant from {from} does not open with this participant's meeting key")]
    GrantDoesNotOpen {
        /// Its sender.
        from: String,
    },
    /// HPKE refused to seal (should not happen with valid keys).
    #[error("cannot seal a key grant: {0}")]
    Seal(String),
    /// The identity key could not sign.
    #[error("the identity key cannot sign: {0}")]
    Sign(#[source] SignError),
}

/// How a participant proves who it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Identity {
    /// A room: its device certificate chain, leaf first (DER), the leaf certifying the TPM key.
    Certificate {
        /// DER certificates, leaf first.
        chain: Vec<Vec<u8>>,
    },
    /// A browser: the public key its page made (SubjectPublicKeyInfo DER).
    Key {
        /// SubjectPublicKeyInfo, DER.
        spki: Vec<u8>,
    },
}

/// Why an identity key could not sign: the signer's own error (the TPM's, rustls's, ring's).
pub type SignError = Box<dyn std::error::Error + Send + Sync>;

/// What signs for a participant: the room's TPM device key, or (in tests) a software key.
pub trait IdentitySigner {
    /// The identity to announce.
    fn identity(&self) -> Identity;
    /// An ECDSA P-256 SHA-256 signature of `message`, as r ‖ s (64 bytes, what WebCrypto makes).
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignError>;
}

/// A participant's signed introduction for one meeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announce {
    /// The participant's id in the meeting.
    pub participant: String,
    /// Who it is.
    pub identity: Identity,
    /// Its meeting key: an uncompressed P-256 point (65 bytes).
    pub meeting_key: Vec<u8>,
    /// ECDSA P-256 SHA-256 over [`announce_transcript`], r ‖ s.
    pub signature: Vec<u8>,
}

/// A sender key sealed to one participant.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyGrant {
    /// The sender.
    pub from: String,
    /// The addressee.
    pub to: String,
    /// The SFrame key id of the sender key.
    pub key_id: u64,
    /// HPKE encapsulated key.
    pub enc: Vec<u8>,
    /// HPKE ciphertext of the key material.
    pub sealed: Vec<u8>,
}

impl fmt::Debug for KeyGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KeyGrant({} → {}, kid {})",
            self.from, self.to, self.key_id
        )
    }
}

/// A peer whose announce verified: what it proved and where to seal its keys.
#[derive(Clone)]
pub struct VerifiedPeer {
    /// Its participant id.
    pub participant: String,
    /// Its identity as announced.
    pub identity: Identity,
    /// The identity public key (SubjectPublicKeyInfo DER), for the SAS and for display.
    pub identity_spki: Vec<u8>,
    meeting_key: <Kem as hpke::Kem>::PublicKey,
}

impl fmt::Debug for VerifiedPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifiedPeer({})", self.participant)
    }
}

/// Ourselves in one meeting: our id and our meeting key pair.
pub struct Participant {
    meeting: String,
    id: String,
    identity_spki: Vec<u8>,
    private: <Kem as hpke::Kem>::PrivateKey,
    public: <Kem as hpke::Kem>::PublicKey,
}

impl fmt::Debug for Participant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Participant({} in {})", self.id, self.meeting)
    }
}

fn put(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u32).to_be_bytes());
    out.extend_from_slice(field);
}

/// The bytes an announce signature covers: context, meeting, participant, identity public key
/// and meeting key, each length-prefixed.
pub fn announce_transcript(
    meeting: &str,
    participant: &str,
    identity_spki: &[u8],
    meeting_key: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    put(&mut out, ANNOUNCE_CONTEXT);
    put(&mut out, meeting.as_bytes());
    put(&mut out, participant.as_bytes());
    put(&mut out, identity_spki);
    put(&mut out, meeting_key);
    out
}

fn grant_info(meeting: &str, from: &str, to: &str, key_id: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    put(&mut out, GRANT_CONTEXT);
    put(&mut out, meeting.as_bytes());
    put(&mut out, from.as_bytes());
    put(&mut out, to.as_bytes());
    out.extend_from_slice(&key_id.to_be_bytes());
    out
}

fn check_len(field: &'static str, value: &str) -> Result<(), ExchangeError> {
    if value.len() > MAX_ID_LEN {
        return Err(ExchangeError::TooLarge {
            field,
            limit: MAX_ID_LEN,
        });
    }
    Ok(())
}

/// The identity public key (SubjectPublicKeyInfo DER) an identity proves, checked to be P-256.
pub fn identity_spki(participant: &str, identity: &Identity) -> Result<Vec<u8>, ExchangeError> {
    let bad = |reason: String| ExchangeError::BadIdentity {
        participant: participant.to_owned(),
        reason,
    };
    let spki = match identity {
        Identity::Key { spki } => spki.clone(),
        Identity::Certificate { chain } => {
            if chain.len() > MAX_CHAIN || chain.is_empty() {
                return Err(ExchangeError::TooLarge {
                    field: "identity.chain",
                    limit: MAX_CHAIN,
                });
            }
            if chain.iter().any(|c| c.len() > MAX_CERT_LEN) {
                return Err(ExchangeError::TooLarge {
                    field: "identity.chain[]",
                    limit: MAX_CERT_LEN,
                });
            }
            let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0])
                .map_err(|e| bad(format!("the leaf certificate does not parse: {e}")))?;
            leaf.public_key().raw.to_vec()
        }
    };
    if spki.len() > MAX_CERT_LEN {
        return Err(ExchangeError::TooLarge {
            field: "identity.spki",
            limit: MAX_CERT_LEN,
        });
    }
    p256_point(&spki).map_err(bad)?;
    Ok(spki)
}

/// The uncompressed point of a P-256 SubjectPublicKeyInfo.
fn p256_point(spki: &[u8]) -> Result<Vec<u8>, String> {
    use x509_parser::prelude::FromDer;
    let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki)
        .map_err(|e| format!("not a SubjectPublicKeyInfo: {e}"))?;
    let ec = x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY;
    let p256 = x509_parser::oid_registry::OID_EC_P256;
    let curve = info
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok());
    if info.algorithm.algorithm != ec || curve.as_ref() != Some(&p256) {
        return Err("not an EC key on P-256".into());
    }
    let point = info.subject_public_key.data.to_vec();
    if point.len() != 65 || point[0] != 4 {
        return Err("not an uncompressed P-256 point".into());
    }
    Ok(point)
}

impl Participant {
    /// Joins `meeting` as `id`: makes the meeting key and the signed announce.
    pub fn new(
        meeting: &str,
        id: &str,
        signer: &dyn IdentitySigner,
    ) -> Result<(Participant, Announce), ExchangeError> {
        check_len("meeting", meeting)?;
        check_len("participant", id)?;
        let identity = signer.identity();
        let spki = identity_spki(id, &identity)?;
        let (private, public) = Kem::gen_keypair();
        let meeting_key = public.to_bytes().to_vec();
        let signature = signer
            .sign(&announce_transcript(meeting, id, &spki, &meeting_key))
            .map_err(ExchangeError::Sign)?;
        let announce = Announce {
            participant: id.to_owned(),
            identity,
            meeting_key,
            signature: signature.to_vec(),
        };
        Ok((
            Participant {
                meeting: meeting.to_owned(),
                id: id.to_owned(),
                identity_spki: spki,
                private,
                public,
            },
            announce,
        ))
    }

    /// Our participant id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Our identity public key (SubjectPublicKeyInfo DER).
    pub fn identity_spki(&self) -> &[u8] {
        &self.identity_spki
    }

    /// Checks a peer's announce for this meeting.
    pub fn verify(&self, announce: &Announce) -> Result<VerifiedPeer, ExchangeError> {
        verify_announce(&self.meeting, announce)
    }

    /// Seals our sender key `key_id` to `peer`.
    pub fn grant(
        &self,
        peer: &VerifiedPeer,
        key_id: u64,
        secret: &KeySecret,
    ) -> Result<KeyGrant, ExchangeError> {
        let info = grant_info(&self.meeting, &self.id, &peer.participant, key_id);
        let (enc, sealed) = hpke::single_shot_seal::<AesGcm256, HkdfSha256, Kem>(
            &OpModeS::Base,
            &peer.meeting_key,
            &info,
            secret.bytes(),
            &[],
        )
        .map_err(|e| ExchangeError::Seal(e.to_string()))?;
        Ok(KeyGrant {
            from: self.id.clone(),
            to: peer.participant.clone(),
            key_id,
            enc: enc.to_bytes().to_vec(),
            sealed,
        })
    }

    /// Opens a grant `peer` sealed to us: its key id and key material.
    pub fn open(
        &self,
        peer: &VerifiedPeer,
        grant: &KeyGrant,
    ) -> Result<(u64, KeySecret), ExchangeError> {
        if grant.from != peer.participant || grant.to != self.id {
            return Err(ExchangeError::Misaddressed {
                from: grant.from.clone(),
                to: grant.to.clone(),
            });
        }
        let refused = || ExchangeError::GrantDoesNotOpen {
            from: grant.from.clone(),
        };
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&grant.enc).map_err(|_| refused())?;
        let info = grant_info(&self.meeting, &grant.from, &self.id, grant.key_id);
        let plain = hpke::single_shot_open::<AesGcm256, HkdfSha256, Kem>(
            &OpModeR::Base,
            &self.private,
            &enc,
            &info,
            &grant.sealed,
            &[],
        )
        .map_err(|_| refused())?;
        let secret = KeySecret::from_slice(&plain).map_err(|_| refused())?;
        Ok((grant.key_id, secret))
    }

    /// Our meeting public key (for tests and diagnostics).
    pub fn meeting_key(&self) -> Vec<u8> {
        self.public.to_bytes().to_vec()
    }
}

/// Checks `announce` for `meeting`: the identity is a P-256 key, the meeting key a P-256 point,
/// and the signature by the identity key covers both, the participant id and the meeting.
pub fn verify_announce(meeting: &str, announce: &Announce) -> Result<VerifiedPeer, ExchangeError> {
    check_len("participant", &announce.participant)?;
    let who = announce.participant.clone();
    let spki = identity_spki(&who, &announce.identity)?;
    let point = p256_point(&spki).map_err(|reason| ExchangeError::BadIdentity {
        participant: who.clone(),
        reason,
    })?;
    let meeting_key =
        <Kem as hpke::Kem>::PublicKey::from_bytes(&announce.meeting_key).map_err(|_| {
            ExchangeError::BadMeetingKey {
                participant: who.clone(),
            }
        })?;
    let transcript = announce_transcript(meeting, &who, &spki, &announce.meeting_key);
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &point)
        .verify(&transcript, &announce.signature)
        .map_err(|_| ExchangeError::BadSignature {
            participant: who.clone(),
        })?;
    Ok(VerifiedPeer {
        participant: who,
        identity: announce.identity.clone(),
        identity_spki: spki,
        meeting_key,
    })
}

/// The short authentication string two participants read to each other: six digits from both
/// identity keys (in a fixed order) and the meeting. A substituted identity on either side
/// gives different digits on the two screens.
pub fn short_authentication_string(meeting: &str, a_spki: &[u8], b_spki: &[u8]) -> String {
    let (first, second) = if a_spki <= b_spki {
        (a_spki, b_spki)
    } else {
        (b_spki, a_spki)
    };
    let mut hash = Sha256::new();
    for field in [
        b"roomd-e2ee sas v1".as_slice(),
        meeting.as_bytes(),
        first,
        second,
    ] {
        hash.update((field.len() as u32).to_be_bytes());
        hash.update(field);
    }
    let digest = hash.finalize();
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % 1_000_000;
    format!("{:03} {:03}", n / 1000, n % 1000)
}
