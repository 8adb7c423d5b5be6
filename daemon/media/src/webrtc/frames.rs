//! End-to-end encryption inside one peer: the `roomdframeencrypt` elements of the streams it
//! sends and the `roomdframedecrypt` elements of the streams it receives, and the keys they hold.
//!
//! Keys arrive from the meeting's key agreement (`roomd_e2ee::session`) at any time, before or
//! after the elements exist (a remote stream's decrypter is made when its first packet arrives):
//! the current sender key and the receiver keys are kept here and handed to every element made
//! later. Audio and video of one sender go under different key ids
//! ([`roomd_e2ee::stream_key_id`]), so that their frame counters never share a nonce.
//!
//! Without a key an encrypter drops frames and a decrypter drops what it cannot open: nothing
//! ever goes out or is shown in the clear.

use std::collections::BTreeMap;
use std::sync::Mutex;

use gstreamer::prelude::*;
use roomd_base::sync::lock;
use roomd_e2ee::element::{FrameDecrypt, FrameEncrypt};
use roomd_e2ee::{E2eeError, KeySecret, SenderKey, stream_key_id};

use crate::MediaKind;

/// Receiver keys one peer keeps at most (its sender's current and previous key, with margin).
const MAX_RECEIVER_KEYS: usize = 8;

/// How many frames a peer's elements protected, opened and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameCounters {
    /// Frames encrypted and sent.
    pub protected: u64,
    /// Frames not sent: no sender key yet, or encryption failed.
    pub unprotected_dropped: u64,
    /// Received frames that opened.
    pub opened: u64,
    /// Received frames dropped: no key for them, wrong key, altered, or not encrypted.
    pub refused: u64,
}

#[derive(Default)]
struct Inner {
    sender: Option<(u64, KeySecret)>,
    /// Sending is held: the encrypters have no key (every frame dropped) until released.
    held: bool,
    receivers: BTreeMap<u64, KeySecret>,
    encrypters: Vec<(FrameEncrypt, MediaKind)>,
    decrypters: Vec<(FrameDecrypt, MediaKind)>,
}

/// The frame elements of one peer and their keys.
#[derive(Default)]
pub(super) struct Frames {
    inner: Mutex<Inner>,
}

fn sender_key(key_id: u64, secret: &KeySecret, kind: MediaKind) -> Result<SenderKey, E2eeError> {
    SenderKey::new(stream_key_id(key_id, kind == MediaKind::Audio), secret)
}

impl Frames {
    /// A new encrypter for a sent stream of `kind`, holding the current sender key if any.
    pub(super) fn encrypter(&self, kind: MediaKind) -> Result<FrameEncrypt, E2eeError> {
        let element = FrameEncrypt::new(&format!("frameencrypt-{}", kind_name(kind)));
        let mut inner = lock(&self.inner);
        if let Some((key_id, secret)) = inner.sender.as_ref().filter(|_| !inner.held) {
            element.set_key(Some(sender_key(*key_id, secret, kind)?));
        }
        inner.encrypters.push((element.clone(), kind));
        Ok(element)
    }

    /// A new decrypter for a received stream of `kind`, holding every receiver key so far.
    pub(super) fn decrypter(&self, kind: MediaKind) -> Result<FrameDecrypt, E2eeError> {
        let mut inner = lock(&self.inner);
        let element = FrameDecrypt::new(&format!(
            "framedecrypt-{}-{}",
            kind_name(kind),
            inner.decrypters.len()
        ));
        for (key_id, secret) in &inner.receivers {
            element.insert_key(stream_key_id(*key_id, kind == MediaKind::Audio), secret)?;
        }
        inner.decrypters.push((element.clone(), kind));
        Ok(element)
    }

    /// Encrypts with this key from now on (also every sent stream made later).
    pub(super) fn set_sender_key(&self, key_id: u64, secret: &KeySecret) -> Result<(), E2eeError> {
        let mut inner = lock(&self.inner);
        if !inner.held {
            for (element, kind) in &inner.encrypters {
                element.set_key(Some(sender_key(key_id, secret, *kind)?));
            }
        }
        inner.sender = Some((key_id, secret.clone()));
        Ok(())
    }

    /// Holds sending (`true`: the encrypters lose their key and drop every frame) or releases
    /// it (they get the current sender key back).
    pub(super) fn hold(&self, held: bool) -> Result<(), E2eeError> {
        let mut inner = lock(&self.inner);
        if inner.held == held {
            return Ok(());
        }
        inner.held = held;
        for (element, kind) in &inner.encrypters {
            match (&inner.sender, held) {
                (Some((key_id, secret)), false) => {
                    element.set_key(Some(sender_key(*key_id, secret, *kind)?));
                }
                _ => element.set_key(None),
            }
        }
        Ok(())
    }

    /// Opens frames under this key from now on.
    pub(super) fn insert_receiver_key(
        &self,
        key_id: u64,
        secret: &KeySecret,
    ) -> Result<(), E2eeError> {
        let mut inner = lock(&self.inner);
        if inner.receivers.len() >= MAX_RECEIVER_KEYS && !inner.receivers.contains_key(&key_id) {
            return Err(E2eeError::TooManyKeys {
                limit: MAX_RECEIVER_KEYS,
            });
        }
        for (element, kind) in &inner.decrypters {
            element.insert_key(stream_key_id(key_id, *kind == MediaKind::Audio), secret)?;
        }
        inner.receivers.insert(key_id, secret.clone());
        Ok(())
    }

    /// Refuses frames under this key from now on.
    pub(super) fn remove_receiver_key(&self, key_id: u64) {
        let mut inner = lock(&self.inner);
        for (element, kind) in &inner.decrypters {
            element.remove_key(stream_key_id(key_id, *kind == MediaKind::Audio));
        }
        inner.receivers.remove(&key_id);
    }

    /// The elements' counters, summed.
    pub(super) fn counters(&self) -> FrameCounters {
        let inner = lock(&self.inner);
        let mut counters = FrameCounters::default();
        for (element, _) in &inner.encrypters {
            counters.protected += element.property::<u64>("frames-protected");
            counters.unprotected_dropped += element.property::<u64>("frames-dropped");
        }
        for (element, _) in &inner.decrypters {
            counters.opened += element.property::<u64>("frames-opened");
            counters.refused += element.property::<u64>("frames-refused");
        }
        counters
    }
}

fn kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Video => "video",
        MediaKind::Audio => "audio",
    }
}
