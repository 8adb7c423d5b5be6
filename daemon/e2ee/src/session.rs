//! One participant's end-to-end key agreement in one meeting, independent of the transport.
//!
//! The meeting's data path (Janus data channels, the room's own data channels in hosted and
//! direct meetings, a browser's worker) carries [`Message`]s; this state machine turns what
//! arrives and what happens (a participant left, the rekey timer, a person confirmed the short
//! authentication string) into [`Effect`]s: messages to send, keys to hand to the frame
//! elements. It owns every secret of the meeting and forgets them with itself.
//!
//! - Start: a fresh sender key (epoch 0) and our announce to everybody.
//! - An announce that verifies: the peer is stored, gets our announce back (so that a newcomer
//!   learns who is there) and a grant of our current sender key.
//! - A grant that opens: the peer's key goes to the receiver; of each sender, the newest two
//!   keys are kept (frames in flight across a rekey still open), older ones are removed.
//! - A leave: the peer's keys are removed and we rekey, granting the new key to those who stay;
//!   the one who left never gets it. The timer rekeys the same way.
//! - Verification: certified by the customer's CA ([`crate::verify`]), or both sides confirmed
//!   the short authentication string.

use std::collections::BTreeMap;

use rustls_pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};

use crate::KeySecret;
use crate::exchange::{
    Announce, ExchangeError, IdentitySigner, KeyGrant, Participant, VerifiedPeer,
    short_authentication_string,
};
use crate::verify::{Verification, verify_identity};

/// Most peers one session keeps (a meeting's participants); more announces are refused.
pub const MAX_PEERS: usize = 64;
/// Keys of one sender kept at once: the current one and the one before it.
const KEYS_PER_SENDER: usize = 2;
/// Largest encoded message accepted, in bytes (a certificate chain is the biggest part).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// What participants send each other over the meeting's data path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Who the sender is and its meeting key, signed.
    Announce(Announce),
    /// A sender key sealed to one participant.
    Grant(KeyGrant),
    /// The sender's person confirmed the short authentication string with `peer`.
    SasConfirmed {
        /// Who confirmed.
        from: String,
        /// With whom.
        peer: String,
    },
    /// The sender shares content from a second publisher, `feed` (in a Janus room), whose
    /// frames go under the sender's key ids with [`crate::CONTENT_KEY_ID_BIT`] set. Only the
    /// transport's owner of the session acts on it (the receiver of those frames).
    Content {
        /// Who shares.
        from: String,
        /// The content publisher's id in the meeting.
        feed: String,
    },
}

impl Message {
    /// Parses a message from the data path, bounded in size.
    pub fn parse(bytes: &[u8]) -> Result<Message, SessionError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(SessionError::TooLarge {
                len: bytes.len(),
                limit: MAX_MESSAGE_BYTES,
            });
        }
        serde_json::from_slice(bytes).map_err(|e| SessionError::Malformed(e.to_string()))
    }

    /// The message as it goes on the data path.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising these plain structs cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// What the owner of the session must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send `message` to `to` (a participant id), or to everybody when None.
    Send {
        /// The addressee, or None for all.
        to: Option<String>,
        /// What to send.
        message: Message,
    },
    /// Encrypt from now on with this key (`roomdframeencrypt`).
    SetSenderKey {
        /// SFrame key id.
        key_id: u64,
        /// Key material.
        secret: KeySecret,
    },
    /// Accept frames under this key (`roomdframedecrypt`).
    InsertReceiverKey {
        /// SFrame key id.
        key_id: u64,
        /// Key material.
        secret: KeySecret,
    },
    /// Refuse frames under this key from now on.
    RemoveReceiverKey {
        /// SFrame key id.
        key_id: u64,
    },
}

/// Why a message was refused; the session stays as it was.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The announce or grant itself is wrong (signature, addressee, sealing).
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    /// Not a message of this protocol.
    #[error("not an end-to-end key message: {0}")]
    Malformed(String),
    /// Too big.
    #[error("a key message of {len} bytes exceeds {limit}")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// More peers than a meeting may have.
    #[error("more than {MAX_PEERS} participants announced themselves")]
    TooManyPeers,
    /// A grant from someone who has not announced themselves (or has left).
    #[error("a key grant from {0}, who is not a verified participant")]
    UnknownSender(String),
    /// The transport says the message came from someone else than it claims.
    #[error("a message claiming to be from {claimed} arrived from {actual}")]
    Impersonation {
        /// Who the message says it is from.
        claimed: String,
        /// Who the transport says sent it.
        actual: String,
    },
}

/// How a participant is verified, for the indicators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// Not verified: why.
    No(String),
    /// Its certificate chains to a CA the customer trusts: the certificate's name.
    ByCertificate(String),
    /// Both sides confirmed the short authentication string.
    BySas,
}

/// One participant as the indicators show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// Its participant id.
    pub participant: String,
    /// We hold its current sender key and it was granted ours: media both ways is end-to-end
    /// encrypted.
    pub end_to_end: bool,
    /// Whether and how it is verified.
    pub verified: Verified,
    /// The digits to compare with it.
    pub sas: String,
}

struct Peer {
    peer: VerifiedPeer,
    /// Its announce as last accepted.
    announce: Announce,
    certificate: Verification,
    sas_confirmed_here: bool,
    sas_confirmed_there: bool,
    /// Its keys we hold, oldest first.
    key_ids: Vec<u64>,
    /// Our key id it was granted last.
    granted: Option<u64>,
    /// When we last sent it our announce again in answer to its repeated one (seconds since
    /// the epoch), see [`E2eeSession::announce`].
    reannounced_at: Option<u64>,
}

/// At most one announce in answer to a participant's repeated announces per this many seconds:
/// two participants that cannot open each other's grants do not echo announces at the speed of
/// the network.
const REANNOUNCE_SECONDS: u64 = 1;

/// One participant's key agreement in one meeting.
pub struct E2eeSession {
    meeting: String,
    me: Participant,
    announce: Announce,
    trusted: Vec<CertificateDer<'static>>,
    peers: BTreeMap<String, Peer>,
    /// Random high bits of our key ids, so that two senders never share one.
    key_prefix: u64,
    epoch: u16,
    secret: KeySecret,
}

fn random_secret() -> KeySecret {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .unwrap_or_else(|_| std::process::abort());
    KeySecret::new(bytes)
}

fn random_prefix() -> u64 {
    let mut bytes = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .unwrap_or_else(|_| std::process::abort());
    // 40 random bits above the 16-bit epoch: SFrame headers carry at most 8 bytes of key id.
    (u64::from_be_bytes(bytes) & 0xff_ffff_ffff) << 16
}

impl E2eeSession {
    /// Starts as `me` in `meeting`; `trusted` are the CAs whose rooms count as certified.
    pub fn start(
        meeting: &str,
        me: &str,
        signer: &dyn IdentitySigner,
        trusted: Vec<CertificateDer<'static>>,
    ) -> Result<(E2eeSession, Vec<Effect>), SessionError> {
        let (participant, announce) = Participant::new(meeting, me, signer)?;
        let session = E2eeSession {
            meeting: meeting.to_owned(),
            me: participant,
            announce: announce.clone(),
            trusted,
            peers: BTreeMap::new(),
            key_prefix: random_prefix(),
            epoch: 0,
            secret: random_secret(),
        };
        let effects = vec![
            Effect::SetSenderKey {
                key_id: session.key_id(),
                secret: session.secret.clone(),
            },
            Effect::Send {
                to: None,
                message: Message::Announce(announce),
            },
        ];
        Ok((session, effects))
    }

    /// Our announce again, for everybody: a transport that may lose messages (a data channel
    /// that opens after the first ones were sent) sends it now and then; those who know us
    /// answer with a fresh grant of their key, those who do not with their announce and grant.
    pub fn announce(&self) -> Effect {
        Effect::Send {
            to: None,
            message: Message::Announce(self.announce.clone()),
        }
    }

    /// How many times our sender key was replaced (a leave or the timer): 0 for the first.
    pub fn epoch(&self) -> u16 {
        self.epoch
    }

    /// Our participant id.
    pub fn participant(&self) -> &str {
        self.me.id()
    }

    /// Our current sender key id.
    pub fn key_id(&self) -> u64 {
        self.key_prefix | u64::from(self.epoch)
    }

    /// Handles a message the transport says came from `sender`.
    pub fn receive(
        &mut self,
        sender: &str,
        message: Message,
        now: UnixTime,
    ) -> Result<Vec<Effect>, SessionError> {
        let claimed = match &message {
            Message::Announce(a) => &a.participant,
            Message::Grant(g) => &g.from,
            Message::SasConfirmed { from, .. } | Message::Content { from, .. } => from,
        };
        if claimed != sender {
            return Err(SessionError::Impersonation {
                claimed: claimed.clone(),
                actual: sender.to_owned(),
            });
        }
        match message {
            Message::Announce(announce) => self.on_announce(announce, now),
            Message::Grant(grant) => self.on_grant(grant),
            Message::SasConfirmed { from, peer } => {
                if peer == self.me.id()
                    && let Some(p) = self.peers.get_mut(&from)
                {
                    p.sas_confirmed_there = true;
                }
                Ok(Vec::new())
            }
            Message::Content { .. } => Ok(Vec::new()),
        }
    }

    /// Our current sender key: its key id and material (for a second publisher of ours, the
    /// shared content, which encrypts under [`crate::content_key_id`]).
    pub fn sender_key(&self) -> (u64, KeySecret) {
        (self.key_id(), self.secret.clone())
    }

    fn on_announce(
        &mut self,
        announce: Announce,
        now: UnixTime,
    ) -> Result<Vec<Effect>, SessionError> {
        if announce.participant == self.me.id() {
            return Ok(Vec::new());
        }
        let known = self.peers.get(&announce.participant);
        // The same announce again (our reply to its announce crossing its reply to ours, or its
        // periodic announce on a lossy data path, see [`E2eeSession::announce`]): it gets our
        // current key again, in case our grant never reached it, and no announce back, which
        // would make two participants echo each other for ever.
        //
        // But while it has granted us no key, it may never have heard our announce (its
        // channel to hear us opened after we sent it): it gets our announce again too, at most
        // once per [`REANNOUNCE_SECONDS`], so that the two do not echo each other.
        if let Some(peer) = known.filter(|p| p.announce == announce) {
            let grant = self.me.grant(&peer.peer, self.key_id(), &self.secret)?;
            let seconds = now.as_secs();
            let reannounce = peer.key_ids.is_empty()
                && peer
                    .reannounced_at
                    .is_none_or(|at| seconds.saturating_sub(at) >= REANNOUNCE_SECONDS);
            let mut effects = Vec::new();
            if reannounce {
                if let Some(peer) = self.peers.get_mut(&announce.participant) {
                    peer.reannounced_at = Some(seconds);
                }
                effects.push(Effect::Send {
                    to: Some(announce.participant.clone()),
                    message: Message::Announce(self.announce.clone()),
                });
            }
            effects.push(Effect::Send {
                to: Some(announce.participant),
                message: Message::Grant(grant),
            });
            return Ok(effects);
        }
        // Otherwise a new participant, or a known one with a new meeting key (it reconnected):
        // it gets our announce and a grant to its current meeting key.
        if known.is_none() && self.peers.len() >= MAX_PEERS {
            return Err(SessionError::TooManyPeers);
        }
        let verified = self.me.verify(&announce)?;
        let announced = announce.clone();
        let certificate = verify_identity(&verified.identity, &self.trusted, now);
        let id = verified.participant.clone();
        let grant = self.me.grant(&verified, self.key_id(), &self.secret)?;
        let old_keys = self
            .peers
            .get(&id)
            .filter(|p| p.peer.identity == verified.identity)
            .map(|p| p.key_ids.clone())
            .unwrap_or_default();
        let mut effects = Vec::new();
        // A different identity under a known id is someone else: its keys go.
        if let Some(previous) = self.peers.get(&id)
            && previous.peer.identity != verified.identity
        {
            effects.extend(
                previous
                    .key_ids
                    .iter()
                    .map(|&key_id| Effect::RemoveReceiverKey { key_id }),
            );
        }
        self.peers.insert(
            id.clone(),
            Peer {
                peer: verified,
                announce: announced,
                certificate,
                sas_confirmed_here: false,
                sas_confirmed_there: false,
                key_ids: old_keys,
                granted: Some(self.key_id()),
                reannounced_at: None,
            },
        );
        effects.push(Effect::Send {
            to: Some(id.clone()),
            message: Message::Announce(self.announce.clone()),
        });
        effects.push(Effect::Send {
            to: Some(id),
            message: Message::Grant(grant),
        });
        Ok(effects)
    }

    fn on_grant(&mut self, grant: KeyGrant) -> Result<Vec<Effect>, SessionError> {
        let Some(peer) = self.peers.get_mut(&grant.from) else {
            return Err(SessionError::UnknownSender(grant.from));
        };
        let (key_id, secret) = self.me.open(&peer.peer, &grant)?;
        let mut effects = vec![Effect::InsertReceiverKey { key_id, secret }];
        if !peer.key_ids.contains(&key_id) {
            peer.key_ids.push(key_id);
        }
        while peer.key_ids.len() > KEYS_PER_SENDER {
            let old = peer.key_ids.remove(0);
            effects.push(Effect::RemoveReceiverKey { key_id: old });
        }
        Ok(effects)
    }

    /// `participant` left: its keys go, and the others get a new sender key it never sees.
    pub fn leave(&mut self, participant: &str) -> Result<Vec<Effect>, SessionError> {
        let Some(peer) = self.peers.remove(participant) else {
            return Ok(Vec::new());
        };
        let mut effects: Vec<Effect> = peer
            .key_ids
            .iter()
            .map(|&key_id| Effect::RemoveReceiverKey { key_id })
            .collect();
        effects.extend(self.rekey()?);
        Ok(effects)
    }

    /// A new sender key for everyone present (also on the rekey timer).
    pub fn rekey(&mut self) -> Result<Vec<Effect>, SessionError> {
        self.epoch = self.epoch.wrapping_add(1);
        self.secret = random_secret();
        let key_id = self.key_id();
        let mut effects = vec![Effect::SetSenderKey {
            key_id,
            secret: self.secret.clone(),
        }];
        for (id, peer) in &mut self.peers {
            let grant = self.me.grant(&peer.peer, key_id, &self.secret)?;
            peer.granted = Some(key_id);
            effects.push(Effect::Send {
                to: Some(id.clone()),
                message: Message::Grant(grant),
            });
        }
        Ok(effects)
    }

    /// Our person confirmed the short authentication string with `participant`.
    pub fn confirm_sas(&mut self, participant: &str) -> Vec<Effect> {
        let Some(peer) = self.peers.get_mut(participant) else {
            return Vec::new();
        };
        peer.sas_confirmed_here = true;
        vec![Effect::Send {
            to: Some(participant.to_owned()),
            message: Message::SasConfirmed {
                from: self.me.id().to_owned(),
                peer: participant.to_owned(),
            },
        }]
    }

    /// Every peer as the indicators show it.
    pub fn status(&self) -> Vec<PeerStatus> {
        self.peers
            .iter()
            .map(|(id, p)| PeerStatus {
                participant: id.clone(),
                end_to_end: p.granted == Some(self.key_id()) && !p.key_ids.is_empty(),
                verified: match &p.certificate {
                    Verification::Certified { name } => Verified::ByCertificate(name.clone()),
                    Verification::Unverified { .. }
                        if p.sas_confirmed_here && p.sas_confirmed_there =>
                    {
                        Verified::BySas
                    }
                    Verification::Unverified { reason } => Verified::No(reason.clone()),
                },
                sas: short_authentication_string(
                    &self.meeting,
                    self.me.identity_spki(),
                    &p.peer.identity_spki,
                ),
            })
            .collect()
    }
}
