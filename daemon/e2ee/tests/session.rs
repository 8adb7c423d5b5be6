//! Three participants' key agreement, their messages carried by an in-memory router (as the
//! meeting's data path will carry them), and real frames protected and opened with the keys the
//! sessions hand out: everyone opens everyone's frames, a room certified by the customer's CA is
//! shown so, a browser is verified only once both sides confirmed the digits, and after a leave
//! the one who left opens nothing new.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use rustls_pki_types::{CertificateDer, UnixTime};

use roomd_e2ee::exchange::{Identity, IdentitySigner, SignError};
use roomd_e2ee::frame::{open, protect};
use roomd_e2ee::session::{E2eeSession, Effect, Message, SessionError, Verified};
use roomd_e2ee::{Codec, ReceiverKeys, SenderKey};

const MEETING: &str = "janus:https://janus.example/janus#77";

struct Signer {
    key: EcdsaKeyPair,
    chain: Option<Vec<Vec<u8>>>,
}

impl IdentitySigner for Signer {
    fn identity(&self) -> Identity {
        match &self.chain {
            Some(chain) => Identity::Certificate {
                chain: chain.clone(),
            },
            None => {
                let mut spki = vec![
                    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
                    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
                ];
                spki.extend_from_slice(self.key.public_key().as_ref());
                Identity::Key { spki }
            }
        }
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignError> {
        let signature = self
            .key
            .sign(&SystemRandom::new(), message)
            .map_err(|_| "cannot sign")?;
        signature.as_ref().try_into().map_err(|_| "length".into())
    }
}

fn room(issuer: &Issuer<'static, KeyPair>, name: &str) -> Signer {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.signed_by(&key, issuer).expect("leaf");
    Signer {
        key: EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &SystemRandom::new(),
        )
        .expect("key"),
        chain: Some(vec![cert.der().to_vec()]),
    }
}

fn browser() -> Signer {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
    Signer {
        key: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("key"),
        chain: None,
    }
}

/// A participant: its session and the keys its frame elements would hold.
struct Node {
    session: E2eeSession,
    sender: Option<SenderKey>,
    receiver: ReceiverKeys,
}

/// Everyone's messages, delivered in order; the transport knows who sent what.
struct Meeting {
    nodes: BTreeMap<String, Node>,
    queue: VecDeque<(String, Option<String>, Message)>,
}

fn now() -> UnixTime {
    UnixTime::since_unix_epoch(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO),
    )
}

impl Meeting {
    fn apply(&mut self, who: &str, effects: Vec<Effect>) {
        for effect in effects {
            let node = self.nodes.get_mut(who).expect("node");
            match effect {
                Effect::Send { to, message } => {
                    // Through the wire format, as the data path carries it.
                    let message = Message::parse(&message.encode()).expect("round trip");
                    self.queue.push_back((who.to_owned(), to, message));
                }
                Effect::SetSenderKey { key_id, secret } => {
                    node.sender = Some(SenderKey::new(key_id, &secret).expect("sender key"));
                }
                Effect::InsertReceiverKey { key_id, secret } => {
                    node.receiver.insert(key_id, &secret).expect("receiver key");
                }
                Effect::RemoveReceiverKey { key_id } => {
                    node.receiver.remove(key_id);
                }
            }
        }
    }

    fn join(&mut self, id: &str, signer: &Signer, trusted: &[CertificateDer<'static>]) {
        let (session, effects) =
            E2eeSession::start(MEETING, id, signer, trusted.to_vec()).expect("start");
        self.nodes.insert(
            id.to_owned(),
            Node {
                session,
                sender: None,
                receiver: ReceiverKeys::default(),
            },
        );
        self.apply(id, effects);
    }

    fn deliver(&mut self) {
        let mut rounds = 0;
        while let Some((from, to, message)) = self.queue.pop_front() {
            rounds += 1;
            assert!(rounds < 1000, "the exchange does not settle");
            let addressees: Vec<String> = match to {
                Some(to) => vec![to],
                None => self.nodes.keys().filter(|k| **k != from).cloned().collect(),
            };
            for to in addressees {
                let Some(node) = self.nodes.get_mut(&to) else {
                    continue; // It left.
                };
                let effects = node
                    .session
                    .receive(&from, message.clone(), now())
                    .unwrap_or_else(|e| panic!("{to} refused {message:?} from {from}: {e}"));
                self.apply(&to, effects);
            }
        }
    }

    fn leave(&mut self, id: &str) -> Node {
        let gone = self.nodes.remove(id).expect("was there");
        let others: Vec<String> = self.nodes.keys().cloned().collect();
        for other in others {
            let effects = self
                .nodes
                .get_mut(&other)
                .expect("node")
                .session
                .leave(id)
                .expect("leave");
            self.apply(&other, effects);
        }
        self.deliver();
        gone
    }

    /// A frame from `from` opens at `at`.
    fn opens(&mut self, from: &str, at: &Node) -> bool {
        let frame: Vec<u8> = (0..64u8).collect();
        let sender = self
            .nodes
            .get_mut(from)
            .and_then(|n| n.sender.as_mut())
            .expect("a sender key");
        let protected = protect(Codec::Opus, sender, &frame).expect("protect");
        open(Codec::Opus, &at.receiver, &protected).is_ok_and(|opened| opened == frame)
    }
}

#[test]
fn three_participants_agree_keys_verify_and_cut_off_the_one_who_leaves() {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Customer Rooms CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
    let ca_der = ca_params
        .clone()
        .self_signed(&ca_key)
        .expect("CA")
        .der()
        .to_vec();
    let issuer = Issuer::new(ca_params, ca_key);
    let trusted = vec![CertificateDer::from(ca_der)];

    let mut meeting = Meeting {
        nodes: BTreeMap::new(),
        queue: VecDeque::new(),
    };
    meeting.join("room-a", &room(&issuer, "room-a.example"), &trusted);
    meeting.join("room-b", &room(&issuer, "room-b.example"), &trusted);
    meeting.deliver();
    meeting.join("guest", &browser(), &trusted);
    meeting.deliver();

    // Everyone holds everyone's key, and says so.
    for id in ["room-a", "room-b", "guest"] {
        let status = meeting.nodes[id].session.status();
        assert_eq!(status.len(), 2, "{id}: {status:?}");
        assert!(status.iter().all(|p| p.end_to_end), "{id}: {status:?}");
    }
    for (from, at) in [
        ("room-a", "room-b"),
        ("room-b", "guest"),
        ("guest", "room-a"),
    ] {
        let at_node = meeting.nodes.remove(at).expect("node");
        assert!(meeting.opens(from, &at_node), "{at} opens {from}'s frames");
        meeting.nodes.insert(at.to_owned(), at_node);
    }

    // The rooms are certified by the customer's CA; the browser is not, until both confirm.
    let seen_by_a = meeting.nodes["room-a"].session.status();
    let b = seen_by_a
        .iter()
        .find(|p| p.participant == "room-b")
        .expect("b");
    assert_eq!(b.verified, Verified::ByCertificate("room-b.example".into()));
    let guest = seen_by_a
        .iter()
        .find(|p| p.participant == "guest")
        .expect("guest");
    assert!(matches!(guest.verified, Verified::No(_)), "{guest:?}");
    let digits_on_guest = meeting.nodes["guest"]
        .session
        .status()
        .into_iter()
        .find(|p| p.participant == "room-a")
        .expect("a")
        .sas;
    assert_eq!(
        guest.sas, digits_on_guest,
        "both screens show the same digits"
    );
    let effects = meeting
        .nodes
        .get_mut("room-a")
        .expect("a")
        .session
        .confirm_sas("guest");
    meeting.apply("room-a", effects);
    meeting.deliver();
    let half = meeting.nodes["room-a"].session.status();
    assert!(
        matches!(
            half.iter()
                .find(|p| p.participant == "guest")
                .expect("g")
                .verified,
            Verified::No(_)
        ),
        "one side's confirmation is not enough"
    );
    let effects = meeting
        .nodes
        .get_mut("guest")
        .expect("g")
        .session
        .confirm_sas("room-a");
    meeting.apply("guest", effects);
    meeting.deliver();
    let both = meeting.nodes["room-a"].session.status();
    assert_eq!(
        both.iter()
            .find(|p| p.participant == "guest")
            .expect("g")
            .verified,
        Verified::BySas
    );

    // The guest leaves: the rooms rekey; their new frames do not open with what it kept.
    let gone = meeting.leave("guest");
    assert!(
        !meeting.opens("room-a", &gone),
        "the one who left opens room-a's new frames"
    );
    assert!(
        !meeting.opens("room-b", &gone),
        "the one who left opens room-b's new frames"
    );
    let b_node = meeting.nodes.remove("room-b").expect("b");
    assert!(
        meeting.opens("room-a", &b_node),
        "room-b still opens room-a after the rekey"
    );
    meeting.nodes.insert("room-b".into(), b_node);
    for id in ["room-a", "room-b"] {
        let status = meeting.nodes[id].session.status();
        assert_eq!(status.len(), 1, "{id}: {status:?}");
        assert!(status[0].end_to_end, "{id}: {status:?}");
    }
}

#[test]
fn forged_and_unexpected_messages_are_refused() {
    let (mut a, start_a) = E2eeSession::start(MEETING, "a", &browser(), Vec::new()).expect("a");
    let (_, start_b) = E2eeSession::start(MEETING, "b", &browser(), Vec::new()).expect("b");
    let announce_b = start_b
        .into_iter()
        .find_map(|e| match e {
            Effect::Send { message, .. } => Some(message),
            _ => None,
        })
        .expect("b's announce");
    // b's announce arriving from c's connection: refused.
    assert!(matches!(
        a.receive("c", announce_b.clone(), now()),
        Err(SessionError::Impersonation { .. })
    ));
    // A grant from someone a never heard of.
    let (c, _) = E2eeSession::start(MEETING, "c", &browser(), Vec::new()).expect("c");
    let _ = c;
    let grant = Message::Grant(roomd_e2ee::exchange::KeyGrant {
        from: "c".into(),
        to: "a".into(),
        key_id: 1,
        enc: vec![4; 65],
        sealed: vec![0; 48],
    });
    assert!(matches!(
        a.receive("c", grant, now()),
        Err(SessionError::UnknownSender(_))
    ));
    // Garbage and oversized input on the data path.
    assert!(Message::parse(b"{\"type\":\"nonsense\"}").is_err());
    assert!(matches!(
        Message::parse(&vec![b' '; 70 * 1024]),
        Err(SessionError::TooLarge { .. })
    ));
    // b's own announce from b is fine and answered with a's announce and a grant.
    let effects = a.receive("b", announce_b, now()).expect("accepted");
    assert_eq!(effects.len(), 2, "{effects:?}");
    let _ = start_a;
}

/// A lossy data path (a Janus data channel that opened after the first messages went out): a
/// participant whose grant never arrived gets the key once the other repeats its announce, and
/// a repeated announce makes no echo.
#[test]
fn a_lost_grant_is_granted_again_when_the_announce_repeats() {
    let mut meeting = Meeting {
        nodes: BTreeMap::new(),
        queue: VecDeque::new(),
    };
    meeting.join("a", &browser(), &[]);
    meeting.join("b", &browser(), &[]);
    // Everything arrives except a's grant to b.
    let mut rounds = 0;
    while let Some((from, to, message)) = meeting.queue.pop_front() {
        rounds += 1;
        assert!(rounds < 100, "the exchange does not settle");
        let addressees: Vec<String> = match to {
            Some(to) => vec![to],
            None => meeting
                .nodes
                .keys()
                .filter(|k| **k != from)
                .cloned()
                .collect(),
        };
        for to in addressees {
            if from == "a" && to == "b" && matches!(message, Message::Grant(_)) {
                continue;
            }
            let node = meeting.nodes.get_mut(&to).expect("node");
            let effects = node
                .session
                .receive(&from, message.clone(), now())
                .expect("accepted");
            meeting.apply(&to, effects);
        }
    }
    let b = meeting.nodes.remove("b").expect("b");
    assert!(
        !meeting.opens("a", &b),
        "b opens a's frames without a's grant"
    );
    meeting.nodes.insert("b".to_owned(), b);

    // b announces again (the periodic announce): a answers with a grant only.
    let again = meeting.nodes["b"].session.announce();
    meeting.apply("b", vec![again]);
    let (from, to, message) = meeting.queue.pop_front().expect("b's announce");
    let effects = meeting
        .nodes
        .get_mut("a")
        .expect("a")
        .session
        .receive(&from, message, now())
        .expect("accepted");
    assert_eq!(to, None);
    assert!(
        matches!(
            effects.as_slice(),
            [Effect::Send { to: Some(to), message: Message::Grant(_) }] if to == "b"
        ),
        "{effects:?}"
    );
    meeting.apply("a", effects);
    meeting.deliver();
    let b = meeting.nodes.remove("b").expect("b");
    assert!(
        meeting.opens("a", &b),
        "b cannot open a's frames after the grant"
    );
}

/// A participant's channel to hear the other opened late: everything `a` sent `b` was lost,
/// so `b` never heard `a`'s announce and `a` holds no key of `b`'s. When `b` repeats its
/// announce, `a` answers with its announce again as well as a grant (a grant alone would be
/// refused: `b` does not know `a`), and the two settle with keys both ways.
#[test]
fn a_repeated_announce_from_who_never_granted_us_gets_our_announce_again() {
    let mut meeting = Meeting {
        nodes: BTreeMap::new(),
        queue: VecDeque::new(),
    };
    meeting.join("a", &browser(), &[]);
    meeting.join("b", &browser(), &[]);
    while let Some((from, to, message)) = meeting.queue.pop_front() {
        if from == "a" {
            continue;
        }
        assert!(to.is_none() || to.as_deref() == Some("a"));
        let effects = meeting
            .nodes
            .get_mut("a")
            .expect("a")
            .session
            .receive(&from, message, now())
            .expect("accepted");
        meeting.apply("a", effects);
    }
    // b repeats its announce (its periodic announce); from now on nothing is lost.
    let again = meeting.nodes["b"].session.announce();
    meeting.apply("b", vec![again]);
    meeting.deliver();
    let b = meeting.nodes.remove("b").expect("b");
    assert!(meeting.opens("a", &b), "b cannot open a's frames");
    meeting.nodes.insert("b".to_owned(), b);
    let a = meeting.nodes.remove("a").expect("a");
    assert!(meeting.opens("b", &a), "a cannot open b's frames");
}
