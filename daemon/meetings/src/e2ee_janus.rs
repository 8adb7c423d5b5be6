//! End-to-end encryption of a Janus meeting: the room's key agreement
//! ([`roomd_e2ee::session::E2eeSession`]) over the VideoRoom's data channels, and its keys in
//! the room's WebRTC peers.
//!
//! Transport: the room's publisher opens a data channel; Janus relays what a publisher sends on
//! it to every subscriber of that publisher, so each message the room sends reaches everybody
//! who receives the room, and the room hears each other participant on its subscription to
//! them. A participant's id in the key agreement is its Janus publisher id; the transport says
//! who sent a message (the feed it came on), and the agreement refuses one that claims to be
//! from someone else. Grants addressed to others are ignored here. Messages are JSON, bounded
//! in size ([`roomd_e2ee::session::MAX_MESSAGE_BYTES`]) and, by the peer, in rate.
//!
//! A data channel opens some time after the first messages may have been sent: the room sends
//! its announce when a channel opens, when a participant joins, after a rekey, and, while it is
//! not established with every participant it receives, again every [`ANNOUNCE_INTERVAL`], at
//! most [`ANNOUNCE_REPEATS`] times after the last of those events. Once established with
//! everybody it repeats nothing. Who knows the room answers an announce with a fresh grant of
//! their key ([`E2eeSession::announce`]): a participant that misses a key asks for it by
//! announcing itself again.
//!
//! Keys: our sender key goes to the publisher peer's encrypters; a participant's keys go to
//! the decrypters of our subscription to them. Nothing here logs or reports a key.

use std::collections::BTreeMap;
use std::time::Duration;

use roomd_core::{E2eeFrames, E2eeParticipant, E2eeState, E2eeStatus};
use roomd_e2ee::session::{E2eeSession, Effect, Message, SessionError, Verified};
use roomd_media::webrtc::{FrameCounters, Peer, PeerError};
use rustls::pki_types::{CertificateDer, UnixTime};

use super::e2ee_content::ContentKeys;
use super::e2ee_identity::MeetingIdentity;
use super::session::blocking;

/// How often the room sends its announce again while it is not established with everybody.
pub(crate) const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(2);
/// How many times the room repeats its announce after the last event that calls for one
/// (30 s at [`ANNOUNCE_INTERVAL`]): a participant that never answers (without E2EE, or
/// gone) does not get announces for ever; its next announce is answered all the same.
pub(crate) const ANNOUNCE_REPEATS: u32 = 15;

/// Why end-to-end encryption could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum E2eeStartError {
    /// The device key could not sign the room's announce.
    #[error("cannot start end-to-end encryption")]
    Session(#[source] SessionError),
    /// The signing task ended (the runtime is shutting down).
    #[error("cannot start end-to-end encryption: the signing task ended")]
    Stopped,
}

/// The room's key agreement in one stay in a Janus room.
pub(crate) struct JanusE2ee {
    session: E2eeSession,
    /// `meeting.require_e2ee`: send nothing unless established with everybody received.
    require: bool,
    /// What the core was told last.
    reported: Option<E2eeStatus>,
    /// Repeats of the announce left (see [`ANNOUNCE_REPEATS`]).
    repeats_left: u32,
    /// Publishers whose short authentication string the room confirmed, with who did.
    sas_confirmed: BTreeMap<u64, String>,
    /// Per publisher: its subscription's decrypter counters at the last look, and what they
    /// showed over the second before it.
    frames: BTreeMap<u64, (FrameCounters, E2eeFrames)>,
    /// Shared content: ours, and the others' content feeds with their keys.
    content: ContentKeys,
}

/// The key agreement's id of the participant Janus knows as publisher `feed`.
fn participant(feed: u64) -> String {
    feed.to_string()
}

impl JanusE2ee {
    /// Starts as publisher `me` in Janus room `room` (the device key signs, off the runtime).
    pub(crate) async fn start(
        identity: &MeetingIdentity,
        room: u64,
        me: u64,
        trusted: Vec<CertificateDer<'static>>,
        require: bool,
    ) -> Result<(JanusE2ee, Vec<Effect>), E2eeStartError> {
        let signer = identity.signer();
        let started = blocking(move || {
            E2eeSession::start(&meeting_id(room), &participant(me), &signer, trusted)
        })
        .await
        .map_err(|_| E2eeStartError::Stopped)?
        .map_err(E2eeStartError::Session)?;
        let (session, effects) = started;
        Ok((
            JanusE2ee {
                session,
                require,
                reported: None,
                repeats_left: ANNOUNCE_REPEATS,
                sas_confirmed: BTreeMap::new(),
                frames: BTreeMap::new(),
                content: ContentKeys::default(),
            },
            effects,
        ))
    }

    /// A message that arrived on our subscription to publisher `feed`.
    pub(crate) fn on_data(&mut self, feed: u64, bytes: &[u8]) -> Vec<Effect> {
        tracing::debug!(
            "end-to-end key message of {} bytes from feed {feed}",
            bytes.len()
        );
        let message = match Message::parse(bytes) {
            Ok(message) => message,
            Err(e) => {
                tracing::debug!("end-to-end key message from feed {feed} refused: {e}");
                return Vec::new();
            }
        };
        // Everybody hears every grant and confirmation: those for others are not ours to open.
        let me = self.session.participant();
        match &message {
            Message::Grant(grant) if grant.to != me => return Vec::new(),
            Message::SasConfirmed { peer, .. } if peer != me => return Vec::new(),
            _ => {}
        }
        let declared = match &message {
            Message::Content { feed, .. } => Some(feed.clone()),
            _ => None,
        };
        match self
            .session
            .receive(&participant(feed), message, UnixTime::now())
        {
            Ok(mut effects) => {
                self.content.note(feed, &effects);
                if let Some(content) = declared
                    && !self.content.declare(feed, &content)
                {
                    tracing::warn!("feed {feed} declared {content:?} its content: refused");
                }
                // Whoever gets our announce learns of our content with it.
                if effects.iter().any(|e| {
                    matches!(
                        e,
                        Effect::Send {
                            message: Message::Announce(_),
                            ..
                        }
                    )
                }) {
                    effects.extend(self.content.declaration(self.session.participant()));
                }
                effects
            }
            Err(e) => {
                tracing::warn!("end-to-end key message from feed {feed} refused: {e}");
                Vec::new()
            }
        }
    }

    /// Our content publisher is `feed` now (None: sharing stopped); it is declared to
    /// everybody with our next announce ([`JanusE2ee::announce`]).
    pub(crate) fn set_content(&mut self, feed: Option<u64>) {
        self.content.set_own(feed);
    }

    /// Brings the content keys up to date (see [`ContentKeys::sync`]): our content publisher
    /// `own`, and our subscriptions to others' content, `subscription(feed)`.
    pub(crate) fn sync_content<'a>(
        &mut self,
        own: Option<&Peer>,
        subscription: impl Fn(u64) -> Option<&'a Peer>,
    ) {
        self.content
            .sync(self.session.sender_key(), own, subscription);
    }

    /// Publisher `feed` left: its keys, its content and its frame counters go, and the room
    /// rekeys for those who stay (and announces itself again, see [`JanusE2ee::announce`]).
    pub(crate) fn leave(&mut self, feed: u64) -> Vec<Effect> {
        self.content.forget(feed);
        self.frames.remove(&feed);
        let mut effects = self.session.leave(&participant(feed)).unwrap_or_else(|e| {
            // Sealing to a verified meeting key does not fail; if it did, the peer who
            // misses the new key sees frames it cannot open, never clear ones.
            tracing::warn!("rekey after feed {feed} left: {e}");
            Vec::new()
        });
        if effects
            .iter()
            .any(|e| matches!(e, Effect::SetSenderKey { .. }))
        {
            effects.extend(self.announce());
        }
        effects
    }

    /// A new sender key for those present (`meeting.e2ee_rekey_s`), granted to each, and our
    /// announce again (see [`JanusE2ee::announce`]).
    pub(crate) fn rekey(&mut self) -> Vec<Effect> {
        let mut effects = self.session.rekey().unwrap_or_else(|e| {
            // As after a leave: a peer who misses the new key sees frames it cannot open.
            tracing::warn!("timed rekey: {e}");
            Vec::new()
        });
        if !effects.is_empty() {
            effects.extend(self.announce());
        }
        effects
    }

    /// The room's people confirmed the short authentication string with publisher `feed`
    /// (`meeting.e2ee_confirm` by `by`): that participant is told, and verifies the room once
    /// its own people confirm too (and we them, once they tell us). Once per participant.
    pub(crate) fn confirm_sas(&mut self, feed: u64, by: &str) -> Vec<Effect> {
        if self.sas_confirmed.contains_key(&feed) {
            return Vec::new();
        }
        let effects = self.session.confirm_sas(&participant(feed));
        if !effects.is_empty() {
            self.sas_confirmed.insert(feed, by.to_owned());
        }
        effects
    }

    /// Our announce, for everybody, on an event that calls for one (a data channel opened, a
    /// participant joined, a rekey, content shared): the repeats start again. With it goes the
    /// declaration of our content while we share.
    pub(crate) fn announce(&mut self) -> Vec<Effect> {
        self.repeats_left = ANNOUNCE_REPEATS;
        self.announce_with_content()
    }

    /// Our announce and, while we share, the declaration of our content.
    fn announce_with_content(&self) -> Vec<Effect> {
        let mut effects = vec![self.session.announce()];
        effects.extend(self.content.declaration(self.session.participant()));
        effects
    }

    /// Our announce again, on the [`ANNOUNCE_INTERVAL`] tick: only while the room is not
    /// established with every participant it receives (as last reported), and at most
    /// [`ANNOUNCE_REPEATS`] times after the last [`JanusE2ee::announce`].
    pub(crate) fn repeat_announce(&mut self) -> Option<Vec<Effect>> {
        let established = self
            .reported
            .as_ref()
            .is_some_and(|s| s.state == E2eeState::Established);
        if established || self.repeats_left == 0 {
            return None;
        }
        self.repeats_left -= 1;
        Some(self.announce_with_content())
    }

    /// The decrypter counters of our subscription to publisher `feed` now (read once a
    /// second): whether its frames opened since the last look, arrived and none opened, or
    /// none arrived.
    pub(crate) fn observe_frames(&mut self, feed: u64, now: FrameCounters) {
        let entry = self.frames.entry(feed).or_insert((now, E2eeFrames::None));
        let (opened, refused) = (
            now.opened.saturating_sub(entry.0.opened),
            now.refused.saturating_sub(entry.0.refused),
        );
        entry.1 = if opened > 0 {
            E2eeFrames::Opening
        } else if refused > 0 {
            E2eeFrames::Refused
        } else {
            E2eeFrames::None
        };
        entry.0 = now;
    }

    /// Under `meeting.require_e2ee`, whether the room must hold its media now (not established
    /// with every participant it receives).
    pub(crate) fn must_hold(&self, feeds: &[(u64, String)]) -> bool {
        self.require && self.status(feeds).state != E2eeState::Established
    }

    /// The status of the key agreement with the participants `feeds` (those the room receives),
    /// when it changed since the last call.
    pub(crate) fn changed_status(&mut self, feeds: &[(u64, String)]) -> Option<E2eeStatus> {
        let status = self.status(feeds);
        if self.reported.as_ref() == Some(&status) {
            return None;
        }
        self.reported = Some(status.clone());
        Some(status)
    }

    fn status(&self, feeds: &[(u64, String)]) -> E2eeStatus {
        let known: BTreeMap<String, _> = self
            .session
            .status()
            .into_iter()
            .map(|p| (p.participant.clone(), p))
            .collect();
        // A declared content feed is shown as its owner is (its frames open with the owner's
        // keys), with its own frames.
        let participants: Vec<E2eeParticipant> = feeds
            .iter()
            .map(|(feed, id)| (self.content.owner_of(*feed).unwrap_or(*feed), *feed, id))
            .map(|(owner, feed, id)| match known.get(&participant(owner)) {
                Some(peer) => {
                    let (verified_by, certificate_name, reason) = match &peer.verified {
                        Verified::ByCertificate(name) => ("certificate", name.clone(), ""),
                        Verified::BySas => ("sas", String::new(), ""),
                        Verified::No(reason) => ("", String::new(), reason.as_str()),
                    };
                    E2eeParticipant {
                        id: id.clone(),
                        e2ee: peer.end_to_end,
                        verified: !verified_by.is_empty(),
                        verified_by: verified_by.to_owned(),
                        certificate_name,
                        reason: reason.to_owned(),
                        sas: peer.sas.clone(),
                        sas_confirmed_by: self
                            .sas_confirmed
                            .get(&owner)
                            .cloned()
                            .unwrap_or_default(),
                        frames: self.frames.get(&feed).map(|f| f.1).unwrap_or_default(),
                    }
                }
                None => E2eeParticipant {
                    id: id.clone(),
                    e2ee: false,
                    verified: false,
                    verified_by: String::new(),
                    certificate_name: String::new(),
                    reason: "no end-to-end announce from this participant".to_owned(),
                    sas: String::new(),
                    sas_confirmed_by: String::new(),
                    frames: self.frames.get(&feed).map(|f| f.1).unwrap_or_default(),
                },
            })
            .collect();
        let missing: Vec<&str> = participants
            .iter()
            .filter(|p| !p.e2ee)
            .map(|p| p.id.as_str())
            .collect();
        let (state, reason) = if participants.is_empty() {
            (
                E2eeState::Establishing,
                "no other participant yet".to_owned(),
            )
        } else if missing.is_empty() {
            (E2eeState::Established, String::new())
        } else {
            (
                E2eeState::Establishing,
                format!("no end-to-end keys yet with {}", missing.join(", ")),
            )
        };
        let reason = if self.require && state != E2eeState::Established {
            format!("{reason}; meeting.require_e2ee: the room sends no media until then")
        } else {
            reason
        };
        E2eeStatus {
            state,
            reason,
            key_epoch: u32::from(self.session.epoch()),
            participants,
        }
    }
}

/// What the key agreement binds its signatures and grants to: the Janus room (every
/// participant names it alike, whatever address they reach Janus by).
fn meeting_id(room: u64) -> String {
    format!("janus-videoroom:{room}")
}

/// Carries out `effects`: messages on the publisher's data channel, our sender key to the
/// publisher, keys of the participant they came from (`from`) to our subscription to them.
pub(crate) fn apply(effects: Vec<Effect>, publisher: Option<&Peer>, from: Option<&Peer>) {
    for effect in effects {
        let result = match effect {
            Effect::Send { message, .. } => match publisher {
                Some(peer) => {
                    let text = String::from_utf8(message.encode()).unwrap_or_default();
                    match peer.send_data(&text) {
                        // The periodic announce makes up for what was sent too early.
                        Err(PeerError::DataChannelNotOpen) => {
                            tracing::debug!(
                                "end-to-end key message not sent: no open data channel yet"
                            );
                            Ok(())
                        }
                        other => other,
                    }
                }
                None => Ok(()),
            },
            Effect::SetSenderKey { key_id, secret } => match publisher {
                Some(peer) => peer.set_sender_key(key_id, &secret),
                None => Ok(()),
            },
            Effect::InsertReceiverKey { key_id, secret } => match from {
                Some(peer) => peer.insert_receiver_key(key_id, &secret),
                None => Ok(()),
            },
            Effect::RemoveReceiverKey { key_id } => {
                if let Some(peer) = from {
                    peer.remove_receiver_key(key_id);
                }
                Ok(())
            }
        };
        if let Err(e) = result {
            // The elements keep dropping what they cannot protect or open: nothing goes clear.
            tracing::warn!("end-to-end encryption: {e}");
        }
    }
}
