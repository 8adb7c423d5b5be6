//! A participant is shown verified with its certificate's name only when its certificate chains
//! to a CA the customer trusts; a self-signed certificate, another CA's, an expired one or a bare
//! key (a browser) stays unverified with the reason.

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::{CertificateDer, UnixTime};

use roomd_e2ee::exchange::Identity;
use roomd_e2ee::verify::{Verification, verify_identity};

struct Ca {
    der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
    let der = params.clone().self_signed(&key).expect("CA").der().to_vec();
    Ca {
        der,
        issuer: Issuer::new(params, key),
    }
}

fn room_certificate(ca: &Ca, name: &str, days: (i64, i64)) -> Vec<u8> {
    let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::days(days.0);
    params.not_after = now + time::Duration::days(days.1);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
    params
        .signed_by(&key, &ca.issuer)
        .expect("leaf")
        .der()
        .to_vec()
}

fn now() -> UnixTime {
    UnixTime::since_unix_epoch(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO),
    )
}

fn chain(leaf: Vec<u8>) -> Identity {
    Identity::Certificate { chain: vec![leaf] }
}

#[test]
fn a_room_certified_by_a_trusted_ca_is_verified_with_its_name() {
    let customer = ca("Customer Rooms CA");
    let trusted = [CertificateDer::from(customer.der.clone())];
    let identity = chain(room_certificate(
        &customer,
        "room-4-12.example.org",
        (-1, 30),
    ));
    assert_eq!(
        verify_identity(&identity, &trusted, now()),
        Verification::Certified {
            name: "room-4-12.example.org".into()
        }
    );
}

#[test]
fn anything_else_stays_unverified_with_a_reason() {
    let customer = ca("Customer Rooms CA");
    let stranger = ca("Someone Else CA");
    let trusted = [CertificateDer::from(customer.der.clone())];
    let unverified = |identity: &Identity| match verify_identity(identity, &trusted, now()) {
        Verification::Unverified { reason } => reason,
        other => panic!("{other:?} for {identity:?}"),
    };
    let other_ca = unverified(&chain(room_certificate(
        &stranger,
        "room.example",
        (-1, 30),
    )));
    assert!(other_ca.contains("does not chain"), "{other_ca}");
    let expired = unverified(&chain(room_certificate(
        &customer,
        "room.example",
        (-60, -1),
    )));
    assert!(expired.contains("does not chain"), "{expired}");
    let self_signed = {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        CertificateParams::new(vec!["room.example".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("self-signed")
            .der()
            .to_vec()
    };
    assert!(unverified(&chain(self_signed)).contains("does not chain"));
    let browser = unverified(&Identity::Key { spki: vec![0x30] });
    assert!(browser.contains("short authentication string"), "{browser}");
    // Without any trusted CA nobody is certified.
    assert!(matches!(
        verify_identity(
            &chain(room_certificate(&customer, "room.example", (-1, 30))),
            &[],
            now()
        ),
        Verification::Unverified { .. }
    ));
}
