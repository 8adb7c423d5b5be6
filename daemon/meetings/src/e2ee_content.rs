//! Shared content in an end-to-end encrypted Janus meeting.
//!
//! A room shares content from a second publisher ([`super::janus_content`]). Its frames go
//! under the room's current sender key with [`roomd_e2ee::CONTENT_KEY_ID_BIT`] set (the content
//! publisher counts its own frames, so it needs key ids and nonces of its own), and the room
//! declares which feed that is with a [`Message::Content`] on its own data channel: the
//! transport says who declares it, as for every key message. A receiver gives its
//! subscription to a declared content feed the keys of the participant who declared it, and
//! only those: frames of a content feed nobody declared, or declared by someone else, do not
//! open. No key is sent for content; the keys are those already granted for the camera.

use std::collections::BTreeMap;

use roomd_e2ee::session::{Effect, Message};
use roomd_e2ee::{KeySecret, content_key_id};
use roomd_media::webrtc::Peer;

/// Most content feeds declared at once (one per other participant, as many as peers).
const MAX_DECLARED: usize = roomd_e2ee::session::MAX_PEERS;
/// Keys of one participant kept for its content: the current one and the one before, as the
/// key agreement keeps them.
const KEYS_PER_OWNER: usize = 2;

/// Which content feeds belong to whom, the keys to open them with, and the key on our own.
#[derive(Default)]
pub(crate) struct ContentKeys {
    /// Our own content publisher, and the key id last set on it.
    own: Option<(u64, Option<u64>)>,
    /// Content feeds the others declared: content feed → the publisher who declared it.
    declared: BTreeMap<u64, u64>,
    /// The keys the room holds of each publisher (as the key agreement granted them), oldest
    /// first.
    owners: BTreeMap<u64, Vec<(u64, KeySecret)>>,
    /// The content key ids each content subscription was given.
    given: BTreeMap<u64, Vec<u64>>,
}

impl ContentKeys {
    /// Publisher `owner` declared `feed` (as sent) its content. False when refused: not a
    /// feed id, its own id, or too many declared.
    pub(crate) fn declare(&mut self, owner: u64, feed: &str) -> bool {
        let Ok(feed) = feed.parse::<u64>() else {
            return false;
        };
        if feed == owner
            || (!self.declared.contains_key(&feed) && self.declared.len() >= MAX_DECLARED)
        {
            return false;
        }
        // Declared by someone else before: the keys it was given go at the next sync.
        self.declared.insert(feed, owner);
        true
    }

    /// The publisher whose content `feed` is, if declared.
    pub(crate) fn owner_of(&self, feed: u64) -> Option<u64> {
        self.declared.get(&feed).copied()
    }

    /// Notes the keys of publisher `owner` that `effects` (from its messages or its leaving)
    /// give or take.
    pub(crate) fn note(&mut self, owner: u64, effects: &[Effect]) {
        for effect in effects {
            match effect {
                Effect::InsertReceiverKey { key_id, secret } => {
                    let keys = self.owners.entry(owner).or_default();
                    keys.retain(|(id, _)| id != key_id);
                    keys.push((*key_id, secret.clone()));
                    while keys.len() > KEYS_PER_OWNER {
                        keys.remove(0);
                    }
                }
                Effect::RemoveReceiverKey { key_id } => {
                    if let Some(keys) = self.owners.get_mut(&owner) {
                        keys.retain(|(id, _)| id != key_id);
                    }
                }
                Effect::Send { .. } | Effect::SetSenderKey { .. } => {}
            }
        }
    }

    /// Publisher `feed` left: as a participant (its keys and its content go) or as a content
    /// feed.
    pub(crate) fn forget(&mut self, feed: u64) {
        self.owners.remove(&feed);
        self.declared
            .retain(|content, owner| *content != feed && *owner != feed);
        self.given.remove(&feed);
    }

    /// Our content publisher is `feed` now (None: sharing stopped).
    pub(crate) fn set_own(&mut self, feed: Option<u64>) {
        self.own = feed.map(|feed| (feed, None));
    }

    /// The declaration of our content, for everybody, while we share.
    pub(crate) fn declaration(&self, me: &str) -> Option<Effect> {
        self.own.map(|(feed, _)| Effect::Send {
            to: None,
            message: Message::Content {
                from: me.to_owned(),
                feed: feed.to_string(),
            },
        })
    }

    /// Brings the keys up to date: our content publisher encrypts under our current sender
    /// key (`sender`; set only when it changed, as setting it restarts the frame counter), and
    /// each declared content subscription (`subscription(feed)`) holds its owner's keys.
    pub(crate) fn sync<'a>(
        &mut self,
        sender: (u64, KeySecret),
        own: Option<&Peer>,
        subscription: impl Fn(u64) -> Option<&'a Peer>,
    ) {
        if let (Some((_, set)), Some(peer)) = (self.own.as_mut(), own) {
            let (key_id, secret) = sender;
            if *set != Some(key_id) {
                match peer.set_sender_key(content_key_id(key_id), &secret) {
                    Ok(()) => *set = Some(key_id),
                    // The content publisher keeps dropping its frames: nothing goes clear.
                    Err(e) => tracing::warn!("end-to-end encryption of the content: {e}"),
                }
            }
        }
        for (&feed, &owner) in &self.declared {
            let Some(peer) = subscription(feed) else {
                continue;
            };
            let keys = self.owners.get(&owner).map(Vec::as_slice).unwrap_or(&[]);
            let wanted: Vec<u64> = keys.iter().map(|(id, _)| content_key_id(*id)).collect();
            let given = self.given.entry(feed).or_default();
            for old in given.iter().filter(|id| !wanted.contains(id)) {
                peer.remove_receiver_key(*old);
            }
            given.retain(|id| wanted.contains(id));
            for (key_id, secret) in keys {
                let id = content_key_id(*key_id);
                if given.contains(&id) {
                    continue;
                }
                match peer.insert_receiver_key(id, secret) {
                    Ok(()) => given.push(id),
                    Err(e) => tracing::warn!("end-to-end encryption of content {feed}: {e}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(key_id: u64) -> Effect {
        Effect::InsertReceiverKey {
            key_id,
            secret: KeySecret::new([key_id as u8; 32]),
        }
    }

    #[test]
    fn a_declaration_names_another_feed_and_is_bounded() {
        let mut keys = ContentKeys::default();
        assert!(!keys.declare(5, "not a feed"));
        assert!(!keys.declare(5, "5"), "its own feed");
        assert!(keys.declare(5, "9"));
        assert_eq!(keys.owner_of(9), Some(5));
        for feed in 100..100 + MAX_DECLARED as u64 - 1 {
            assert!(keys.declare(1, &feed.to_string()));
        }
        assert!(!keys.declare(1, "99999"), "one too many");
        // Declared again by someone else: it is theirs now.
        assert!(keys.declare(6, "9"));
        assert_eq!(keys.owner_of(9), Some(6));
    }

    #[test]
    fn the_owners_newest_two_keys_are_kept_and_a_leave_forgets_them_and_their_content() {
        let mut keys = ContentKeys::default();
        keys.declare(5, "9");
        keys.note(5, &[insert(1), insert(2), insert(3)]);
        let held: Vec<u64> = keys.owners[&5].iter().map(|(id, _)| *id).collect();
        assert_eq!(held, vec![2, 3]);
        keys.note(5, &[Effect::RemoveReceiverKey { key_id: 2 }]);
        assert_eq!(keys.owners[&5].len(), 1);
        keys.forget(5);
        assert!(!keys.owners.contains_key(&5));
        assert_eq!(keys.owner_of(9), None);
    }

    #[test]
    fn our_declaration_goes_out_only_while_we_share() {
        let mut keys = ContentKeys::default();
        assert!(keys.declaration("5").is_none());
        keys.set_own(Some(77));
        match keys.declaration("5") {
            Some(Effect::Send {
                to: None,
                message: Message::Content { from, feed },
            }) => assert_eq!((from.as_str(), feed.as_str()), ("5", "77")),
            other => panic!("{other:?}"),
        }
        keys.set_own(None);
        assert!(keys.declaration("5").is_none());
    }
}
