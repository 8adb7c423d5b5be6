//! DTLS-SRTP (RFC 5763, 5764) for SIP calls: the room's certificate, whose fingerprint goes in
//! its SDP, and the check of the far end's certificate against the fingerprint in the far end's
//! SDP. GStreamer's DTLS elements accept any certificate in the handshake, so the check is ours:
//! the call's media stays behind a closed valve until the certificate the far end proved it
//! holds is the one its SDP named (carried over SIP-TLS), and a mismatch ends the call.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use gstreamer as gst;
use gstreamer::prelude::*;
use sha2::{Digest, Sha256};

use crate::MediaError;

/// Length of a SHA-256 certificate fingerprint (`a=fingerprint:sha-256`).
pub const FINGERPRINT_LEN: usize = 32;

/// The certificate the room shows in DTLS handshakes: made by GStreamer's DTLS agent once per
/// process (a self-signed key pair; trust comes from the fingerprint in the signalling, not
/// from a CA). Its private key stays inside GStreamer.
pub struct DtlsCertificate {
    fingerprint: [u8; FINGERPRINT_LEN],
}

impl std::fmt::Debug for DtlsCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsCertificate")
            .field("fingerprint", &fingerprint_text(&self.fingerprint))
            .finish()
    }
}

impl DtlsCertificate {
    /// SHA-256 of the certificate (DER), for `a=fingerprint:sha-256`.
    pub fn fingerprint(&self) -> &[u8; FINGERPRINT_LEN] {
        &self.fingerprint
    }
}

/// The room's DTLS certificate, made on first use.
pub fn room_certificate() -> Result<&'static DtlsCertificate, MediaError> {
    static CERTIFICATE: OnceLock<Result<DtlsCertificate, String>> = OnceLock::new();
    CERTIFICATE
        .get_or_init(make_certificate)
        .as_ref()
        .map_err(|e| MediaError::Build(format!("SIP media: the room's DTLS certificate: {e}")))
}

fn make_certificate() -> Result<DtlsCertificate, String> {
    // dtlssrtpdec makes its agent's key pair and certificate when created without `pem`.
    let decoder = gst::ElementFactory::make("dtlssrtpdec")
        .build()
        .map_err(|_| "no dtlssrtpdec element (gstreamer1.0-plugins-bad)".to_owned())?;
    let pem = decoder
        .property::<Option<String>>("pem")
        .ok_or_else(|| "dtlssrtpdec made no certificate".to_owned())?;
    let fingerprint = fingerprint_of_pem(&pem)
        .ok_or_else(|| "dtlssrtpdec's certificate is not PEM".to_owned())?;
    Ok(DtlsCertificate { fingerprint })
}

/// SHA-256 of the first certificate in `pem`; `None` when it holds none.
pub(super) fn fingerprint_of_pem(pem: &str) -> Option<[u8; FINGERPRINT_LEN]> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem.find(BEGIN)? + BEGIN.len();
    let length = pem[start..].find(END)?;
    let body: String = pem[start..start + length]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    Some(Sha256::digest(der).into())
}

/// `AB:CD:…`, as in SDP and logs.
pub fn fingerprint_text(fingerprint: &[u8]) -> String {
    fingerprint
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Where a call's DTLS associations stand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DtlsProgress {
    /// Associations still to finish their handshake and the check of the far end's
    /// certificate.
    pub pending: usize,
    /// Why an association failed (the first reason); the call ends with it.
    pub failure: Option<String>,
}

impl DtlsProgress {
    /// Every association is checked (true for a call without DTLS).
    pub fn verified(&self) -> bool {
        self.pending == 0 && self.failure.is_none()
    }
}

/// A call's [`DtlsProgress`], changed from GStreamer's threads and watched by the call.
#[derive(Debug)]
pub(super) struct DtlsState(tokio::sync::watch::Sender<DtlsProgress>);

impl Default for DtlsState {
    fn default() -> Self {
        DtlsState(tokio::sync::watch::channel(DtlsProgress::default()).0)
    }
}

impl DtlsState {
    pub(super) fn progress(&self) -> DtlsProgress {
        self.0.borrow().clone()
    }

    pub(super) fn watch(&self) -> tokio::sync::watch::Receiver<DtlsProgress> {
        self.0.subscribe()
    }

    fn add(&self) {
        self.0.send_modify(|p| p.pending += 1);
    }

    fn verified_one(&self) {
        self.0
            .send_modify(|p| p.pending = p.pending.saturating_sub(1));
    }

    fn fail(&self, reason: String) {
        self.0.send_if_modified(|p| {
            if p.failure.is_some() {
                return false;
            }
            p.failure = Some(reason);
            true
        });
    }
}

/// One DTLS association's pair (a component: RTP, RTCP, or both when multiplexed), and the
/// valves that hold the room's media back until the far end's certificate is checked.
pub(super) struct Association<'a> {
    pub(super) encoder: &'a gst::Element,
    pub(super) decoder: &'a gst::Element,
    pub(super) valves: Vec<gst::Element>,
    /// What the far end's SDP said its certificate's SHA-256 is.
    pub(super) expected: [u8; FINGERPRINT_LEN],
    /// `audio RTP`, `video RTCP`…, for the reasons.
    pub(super) name: String,
    /// Called once the valves open: the first picture through them should be a keyframe
    /// (the one asked for when the call started was held back).
    pub(super) on_open: Option<Arc<dyn Fn() + Send + Sync>>,
}

/// Counts the association in and checks the far end's certificate once its keys are set.
pub(super) fn watch(association: Association<'_>, state: &Arc<DtlsState>) {
    state.add();
    let Association {
        encoder,
        decoder,
        valves,
        expected,
        name,
        on_open,
    } = association;
    let decoder = decoder.downgrade();
    let state = state.clone();
    let checked = AtomicUsize::new(0);
    encoder.connect("on-key-set", false, move |_| {
        // Keys are set once per handshake; a second one (a renegotiation) is not expected.
        if checked.fetch_add(1, Ordering::AcqRel) > 0 {
            return None;
        }
        let presented = decoder
            .upgrade()
            .and_then(|d| d.property::<Option<String>>("peer-pem"))
            .and_then(|pem| fingerprint_of_pem(&pem));
        match presented {
            Some(presented) if presented == expected => {
                for valve in &valves {
                    valve.set_property("drop", false);
                }
                if let Some(on_open) = &on_open {
                    on_open();
                }
                state.verified_one();
                tracing::info!("SIP call: DTLS-SRTP for {name} keyed; the far end's certificate matches its SDP");
            }
            Some(presented) => {
                let reason = format!(
                    "the far end's DTLS certificate for {name} ({}) is not the one its SDP names \
                     ({}): someone may stand in between; the call is ended",
                    fingerprint_text(&presented),
                    fingerprint_text(&expected)
                );
                tracing::warn!("SIP call: {reason}");
                state.fail(reason);
            }
            None => {
                let reason = format!("the far end showed no usable DTLS certificate for {name}");
                tracing::warn!("SIP call: {reason}");
                state.fail(reason);
            }
        }
        None
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fingerprint in the room's SDP is only true if every call's decoder shows that one
    /// certificate (GStreamer's generated agent, shared by every decoder without `pem`).
    #[test]
    fn every_decoder_shows_the_certificate_whose_fingerprint_the_room_names() {
        gst::init().expect("GStreamer");
        let room = room_certificate().expect("the room's certificate");
        for _ in 0..3 {
            let decoder = gst::ElementFactory::make("dtlssrtpdec")
                .build()
                .expect("dtlssrtpdec");
            let pem = decoder
                .property::<Option<String>>("pem")
                .expect("a certificate");
            assert_eq!(fingerprint_of_pem(&pem).as_ref(), Some(room.fingerprint()));
        }
        assert!(!format!("{room:?}").contains("PRIVATE"));
        assert_eq!(fingerprint_of_pem("no certificate here"), None);
        assert_eq!(
            fingerprint_of_pem("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----"),
            None
        );
        assert_eq!(fingerprint_text(&[0xAB, 0x01]), "AB:01");
    }
}
