//! The key exchange between participants: announces signed by identity keys (software keys as a
//! browser has, and a certificate chain as a room has), sender keys sealed to each participant,
//! the rekey after a leave, and the short authentication string.

use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};

use roomd_e2ee::KeySecret;
use roomd_e2ee::exchange::{
    ExchangeError, Identity, IdentitySigner, Participant, SignError, short_authentication_string,
    verify_announce,
};

const MEETING: &str = "janus:https://janus.example/janus#1234";

/// A P-256 key as a browser's page makes one, optionally with a certificate as a room has.
struct Signer {
    key: EcdsaKeyPair,
    certificate: Option<Vec<u8>>,
}

const SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

impl Signer {
    fn software() -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
        Signer {
            key: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .expect("key"),
            certificate: None,
        }
    }

    fn with_certificate(name: &str) -> Signer {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let cert = CertificateParams::new(vec![name.to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("certificate");
        let rng = SystemRandom::new();
        Signer {
            key: EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &key.serialize_der(),
                &rng,
            )
            .expect("key"),
            certificate: Some(cert.der().to_vec()),
        }
    }

    fn spki(&self) -> Vec<u8> {
        let mut spki = SPKI_PREFIX.to_vec();
        spki.extend_from_slice(self.key.public_key().as_ref());
        spki
    }
}

impl IdentitySigner for Signer {
    fn identity(&self) -> Identity {
        match &self.certificate {
            Some(cert) => Identity::Certificate {
                chain: vec![cert.clone()],
            },
            None => Identity::Key { spki: self.spki() },
        }
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignError> {
        let signature = self
            .key
            .sign(&SystemRandom::new(), message)
            .map_err(|_| "ring cannot sign")?;
        signature
            .as_ref()
            .try_into()
            .map_err(|_| "not 64 bytes".into())
    }
}

#[test]
fn sender_keys_reach_every_verified_participant_and_only_them() {
    let (room_a, room_b, browser) = (
        Signer::with_certificate("room-a.example"),
        Signer::with_certificate("room-b.example"),
        Signer::software(),
    );
    let (a, announce_a) = Participant::new(MEETING, "a", &room_a).expect("a");
    let (b, announce_b) = Participant::new(MEETING, "b", &room_b).expect("b");
    let (c, announce_c) = Participant::new(MEETING, "c", &browser).expect("c");
    let b_seen_by_a = a.verify(&announce_b).expect("b verifies");
    let c_seen_by_a = a.verify(&announce_c).expect("c verifies");
    let a_seen_by_b = b.verify(&announce_a).expect("a verifies");
    let a_seen_by_c = c.verify(&announce_a).expect("a verifies");
    assert_eq!(a_seen_by_b.identity_spki, room_a.spki(), "the leaf's key");

    let secret = KeySecret::new([42; 32]);
    let to_b = a.grant(&b_seen_by_a, 7, &secret).expect("grant b");
    let to_c = a.grant(&c_seen_by_a, 7, &secret).expect("grant c");
    assert_eq!(
        b.open(&a_seen_by_b, &to_b).expect("b opens"),
        (7, secret.clone())
    );
    assert_eq!(
        c.open(&a_seen_by_c, &to_c).expect("c opens"),
        (7, secret.clone())
    );

    // C cannot open B's grant, neither as addressed nor relabelled to itself.
    assert!(matches!(
        c.open(&a_seen_by_c, &to_b),
        Err(ExchangeError::Misaddressed { .. })
    ));
    let mut relabelled = to_b.clone();
    relabelled.to = "c".into();
    assert!(matches!(
        c.open(&a_seen_by_c, &relabelled),
        Err(ExchangeError::GrantDoesNotOpen { .. })
    ));
    // Nor a grant whose key id was changed on the way.
    let mut other_kid = to_c.clone();
    other_kid.key_id = 8;
    assert!(matches!(
        c.open(&a_seen_by_c, &other_kid),
        Err(ExchangeError::GrantDoesNotOpen { .. })
    ));

    // C leaves; A rekeys and grants the new key to B only. C, which still holds its meeting
    // key, opens nothing of it.
    let new_secret = KeySecret::new([43; 32]);
    let rekey = a.grant(&b_seen_by_a, 8, &new_secret).expect("rekey");
    assert_eq!(
        b.open(&a_seen_by_b, &rekey).expect("b opens"),
        (8, new_secret)
    );
    let mut stolen = rekey.clone();
    stolen.to = "c".into();
    assert!(c.open(&a_seen_by_c, &stolen).is_err());
}

#[test]
fn tampered_or_transplanted_announces_are_refused() {
    let signer = Signer::software();
    let (_, announce) = Participant::new(MEETING, "a", &signer).expect("a");
    verify_announce(MEETING, &announce).expect("verifies");
    // Another meeting.
    assert!(matches!(
        verify_announce("janus:https://janus.example/janus#9999", &announce),
        Err(ExchangeError::BadSignature { .. })
    ));
    // Another participant id.
    let mut renamed = announce.clone();
    renamed.participant = "mallory".into();
    assert!(matches!(
        verify_announce(MEETING, &renamed),
        Err(ExchangeError::BadSignature { .. })
    ));
    // A substituted meeting key (a man in the middle's own).
    let (mallory, _) = Participant::new(MEETING, "a", &Signer::software()).expect("m");
    let mut swapped = announce.clone();
    swapped.meeting_key = mallory.meeting_key();
    assert!(matches!(
        verify_announce(MEETING, &swapped),
        Err(ExchangeError::BadSignature { .. })
    ));
    // A flipped signature bit.
    let mut flipped = announce.clone();
    flipped.signature[10] ^= 1;
    assert!(verify_announce(MEETING, &flipped).is_err());
    // Not a key at all.
    let mut garbage = announce;
    garbage.identity = Identity::Key {
        spki: vec![1, 2, 3],
    };
    assert!(matches!(
        verify_announce(MEETING, &garbage),
        Err(ExchangeError::BadIdentity { .. })
    ));
}

#[test]
fn both_sides_read_the_same_digits_and_a_substitute_reads_others() {
    let (a, b, mallory) = (Signer::software(), Signer::software(), Signer::software());
    let on_a = short_authentication_string(MEETING, &a.spki(), &b.spki());
    let on_b = short_authentication_string(MEETING, &b.spki(), &a.spki());
    assert_eq!(on_a, on_b);
    assert_eq!(on_a.len(), 7, "six digits in two groups: {on_a}");
    let attacked = short_authentication_string(MEETING, &a.spki(), &mallory.spki());
    assert_ne!(on_a, attacked);
    let elsewhere = short_authentication_string("another meeting", &a.spki(), &b.spki());
    assert_ne!(on_a, elsewhere);
}
