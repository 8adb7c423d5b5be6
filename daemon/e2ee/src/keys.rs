//! Sender and receiver keys. Each participant encrypts with its own sender key; every receiver
//! holds the sender keys of the others, by SFrame key id. The key material comes from the key
//! exchange (sealed to each participant's ephemeral key); this module only derives SFrame's
//! AEAD key and salt from it (RFC 9605, section 4.4.2).

use std::collections::HashMap;
use std::fmt;

use sframe::CipherSuite;
use sframe::frame::{FrameCounter, MonotonicCounter};
use sframe::key::{DecryptionKey, EncryptionKey};

use crate::E2eeError;

/// The cipher suite of every roomd meeting: AES-256-GCM with HKDF-SHA-512 (RFC 9605 suite 5).
/// WebCrypto offers both, so browsers use the same.
pub const CIPHER_SUITE: CipherSuite = CipherSuite::AesGcm256Sha512;

/// Key material of one sender key (roomd makes 32 random bytes). Not `Debug`-printable with its
/// bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySecret(Vec<u8>);

/// The shortest and longest key material accepted, in bytes.
pub const KEY_SECRET_LEN: std::ops::RangeInclusive<usize> = 16..=64;

impl KeySecret {
    /// Wraps 32 bytes of key material.
    pub fn new(bytes: [u8; 32]) -> KeySecret {
        KeySecret(bytes.to_vec())
    }

    /// Key material of another length (16 to 64 bytes), e.g. from a test vector or a peer.
    pub fn from_slice(bytes: &[u8]) -> Result<KeySecret, E2eeError> {
        if !KEY_SECRET_LEN.contains(&bytes.len()) {
            return Err(E2eeError::KeyLength { len: bytes.len() });
        }
        Ok(KeySecret(bytes.to_vec()))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeySecret(…)")
    }
}

/// A sender's current key and its frame counter.
pub struct SenderKey {
    key: EncryptionKey,
    counter: MonotonicCounter,
}

impl SenderKey {
    /// Derives the sender key `key_id` from `secret`; counting starts at 0.
    pub fn new(key_id: u64, secret: &KeySecret) -> Result<SenderKey, E2eeError> {
        Ok(SenderKey {
            key: EncryptionKey::derive_from(CIPHER_SUITE, key_id, secret.bytes())?,
            counter: MonotonicCounter::default(),
        })
    }

    /// The SFrame key id.
    pub fn key_id(&self) -> u64 {
        self.key.key_id()
    }

    pub(crate) fn key(&self) -> &EncryptionKey {
        &self.key
    }

    /// The counter of the next frame; an error once it is used up (then a new key is needed).
    pub(crate) fn next_counter(&mut self) -> Result<u64, E2eeError> {
        self.counter
            .try_next()
            .map_err(|_| E2eeError::CounterExhausted)
    }
}

impl fmt::Debug for SenderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SenderKey(kid {})", self.key_id())
    }
}

/// A sender's audio frames go under its key id with this bit set, its video frames under the
/// key id itself: audio and video are encrypted by separate elements with separate frame
/// counters, and SFrame derives its key and nonce salt from the key id, so the two streams never
/// share a nonce. Session key ids use bits 0-55 ([`crate::session`]).
pub const AUDIO_KEY_ID_BIT: u64 = 1 << 56;

/// A sender's shared content (a second publisher in a Janus room) goes under its key id with
/// this bit set: the content publisher counts its own frames, so it needs key ids (and nonce
/// salts) of its own.
pub const CONTENT_KEY_ID_BIT: u64 = 1 << 57;

/// The key id a sender's content uses under the sender key `key_id`.
pub fn content_key_id(key_id: u64) -> u64 {
    key_id | CONTENT_KEY_ID_BIT
}

/// The key id a sender's stream of one kind uses under the sender key `key_id`.
pub fn stream_key_id(key_id: u64, audio: bool) -> u64 {
    if audio {
        key_id | AUDIO_KEY_ID_BIT
    } else {
        key_id
    }
}

/// The keys a receiver accepts, by key id. Removing a key is how a participant who left is cut
/// off: frames under its key no longer open.
#[derive(Default)]
pub struct ReceiverKeys {
    keys: HashMap<u64, DecryptionKey>,
}

/// At most this many keys at once: a meeting's senders times the keys kept across a rekey.
pub const MAX_RECEIVER_KEYS: usize = 64;

impl ReceiverKeys {
    /// Adds (or replaces) the key `key_id`; the oldest are not evicted: past the limit, an error.
    pub fn insert(&mut self, key_id: u64, secret: &KeySecret) -> Result<(), E2eeError> {
        if self.keys.len() >= MAX_RECEIVER_KEYS && !self.keys.contains_key(&key_id) {
            return Err(E2eeError::TooManyKeys {
                limit: MAX_RECEIVER_KEYS,
            });
        }
        let key = DecryptionKey::derive_from(CIPHER_SUITE, key_id, secret.bytes())?;
        self.keys.insert(key_id, key);
        Ok(())
    }

    /// Forgets the key `key_id`; true if there was one.
    pub fn remove(&mut self, key_id: u64) -> bool {
        self.keys.remove(&key_id).is_some()
    }

    /// The key ids held.
    pub fn key_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.keys.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    pub(crate) fn store(&self) -> &HashMap<u64, DecryptionKey> {
        &self.keys
    }
}

impl fmt::Debug for ReceiverKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReceiverKeys({:?})", self.key_ids())
    }
}
