//! Whether a participant is *verified*: a room whose certificate chains to a CA the customer
//! trusts is, with its certificate's name; anyone else only after people compared the short
//! authentication string ([`crate::exchange::short_authentication_string`]).
//!
//! The chain is checked as rustls checks a TLS peer's (rustls-webpki path building, validity at
//! `now`, extended key usage client or server authentication when the certificate names one).
//! That the leaf's key signed the participant's announce is checked by
//! [`crate::exchange::verify_announce`]; both together make a room verified.

use rustls_pki_types::{CertificateDer, UnixTime};

use crate::exchange::Identity;

/// What the display, panel and guest page show about a participant's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Its certificate chains to a trusted CA: the certificate's name (CN, else first DNS name).
    Certified {
        /// The name to show.
        name: String,
    },
    /// Not (yet) verified, and why; a browser guest stays here until its SAS is confirmed.
    Unverified {
        /// Why, for the person looking at it.
        reason: String,
    },
}

/// Checks `identity` against the customer's trusted CAs (DER) at `now`.
pub fn verify_identity(
    identity: &Identity,
    trusted: &[CertificateDer<'_>],
    now: UnixTime,
) -> Verification {
    let unverified = |reason: &str| Verification::Unverified {
        reason: reason.to_owned(),
    };
    let Identity::Certificate { chain } = identity else {
        return unverified("a key without a certificate: compare the short authentication string");
    };
    let Some((leaf, intermediates)) = chain.split_first() else {
        return unverified("an empty certificate chain");
    };
    let anchors: Vec<_> = trusted
        .iter()
        .filter_map(|ca| webpki::anchor_from_trusted_cert(ca).ok())
        .collect();
    if anchors.is_empty() {
        return unverified("no trusted CA is configured");
    }
    let leaf_der = CertificateDer::from(leaf.as_slice());
    let Ok(end_entity) = webpki::EndEntityCert::try_from(&leaf_der) else {
        return unverified("the certificate does not parse");
    };
    let intermediates: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let chains = |usage| {
        end_entity
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &anchors,
                &intermediates,
                now,
                usage,
                None,
                None,
            )
            .map(|_| ())
    };
    match chains(webpki::KeyUsage::client_auth())
        .or_else(|_| chains(webpki::KeyUsage::server_auth()))
    {
        Ok(()) => Verification::Certified {
            name: certificate_name(leaf).unwrap_or_else(|| "unnamed certificate".into()),
        },
        Err(e) => Verification::Unverified {
            reason: format!("the certificate does not chain to a trusted CA: {e}"),
        },
    }
}

/// The leaf's common name, else its first DNS name.
fn certificate_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    if let Some(cn) = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
    {
        return Some(cn.to_owned());
    }
    cert.subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(name) => Some((*name).to_owned()),
                _ => None,
            })
        })
}
