//! Attestation on the TPM thread: the EK certificate the manufacturer stored in NV, a persistent
//! attestation key (AK) created under the EK, and quotes over the boot PCRs signed by the AK.

use tss_esapi::Context;
use tss_esapi::abstraction::{AsymmetricAlgorithmSelection, ak, ek, pcr};
use tss_esapi::constants::CapabilityType;
use tss_esapi::constants::SessionType;
use tss_esapi::handles::{AuthHandle, KeyHandle, PersistentTpmHandle, SessionHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, SignatureSchemeAlgorithm};
use tss_esapi::interface_types::dynamic_handles::Persistent;
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::Provision;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::interface_types::session_handles::PolicySession;
use tss_esapi::structures::{
    CapabilityData, Data, EncryptedSecret, IdObject, PcrSelectionListBuilder, PcrSlot, Signature,
    SignatureScheme, SymmetricDefinition,
};
use tss_esapi::traits::Marshall;

use super::device_key::is_present;
use super::{EcdsaSignature, P256PublicKey, TpmError};

/// PCRs every quote covers: firmware and boot loader measurements (0–7) and the unified kernel
/// image's sections (11, systemd-stub).
pub const QUOTED_PCRS: [u8; 9] = [0, 1, 2, 3, 4, 5, 6, 7, 11];
const PCR_SLOTS: [PcrSlot; 9] = [
    PcrSlot::Slot0,
    PcrSlot::Slot1,
    PcrSlot::Slot2,
    PcrSlot::Slot3,
    PcrSlot::Slot4,
    PcrSlot::Slot5,
    PcrSlot::Slot6,
    PcrSlot::Slot7,
    PcrSlot::Slot11,
];

/// Where TCG's EK credential profile puts the RSA 2048 EK certificate.
const RSA_EK_CERTIFICATE_NV_INDEX: u32 = 0x01c0_0002;

fn nv_index_present(context: &mut Context, index: u32) -> Result<bool, TpmError> {
    let (data, _) = context
        .get_capability(CapabilityType::Handles, index, 1)
        .map_err(command("list its NV indices"))?;
    Ok(match data {
        CapabilityData::Handles(list) => list
            .into_inner()
            .iter()
            .any(|handle| matches!(handle, TpmHandle::NvIndex(nv) if u32::from(*nv) == index)),
        _ => false,
    })
}

fn command(action: &'static str) -> impl FnOnce(tss_esapi::Error) -> TpmError {
    move |source| TpmError::Command { action, source }
}

/// What a verifier needs to know about this TPM, read once at start.
#[derive(Debug, Clone)]
pub struct AttestationIdentity {
    /// The RSA 2048 EK certificate (DER) from NV index 0x01c00002, if the manufacturer put one
    /// there.
    pub ek_certificate: Option<Vec<u8>>,
    /// The AK's public key.
    pub ak_public: P256PublicKey,
    /// The AK's TPM public area (TPM2B_PUBLIC contents, marshalled), from which a verifier
    /// computes its name and checks its attributes.
    pub ak_public_area: Vec<u8>,
}

/// A quote and the PCR values it covers.
#[derive(Debug, Clone)]
pub struct Quote {
    /// TPMS_ATTEST as the TPM signed it.
    pub attest: Vec<u8>,
    /// The AK's signature over `attest`.
    pub signature: EcdsaSignature,
    /// (PCR index, SHA-256 bank value), in `QUOTED_PCRS` order.
    pub pcrs: Vec<(u8, Vec<u8>)>,
}

/// Reads the EK certificate and finds or creates the persistent AK at `ak_handle`.
pub(super) fn find_or_create_ak(
    context: &mut Context,
    ak_handle: u32,
) -> Result<(KeyHandle, AttestationIdentity), TpmError> {
    // Asking for an NV index that does not exist makes tpm2-tss print errors: look first.
    let ek_certificate = if nv_index_present(context, RSA_EK_CERTIFICATE_NV_INDEX)? {
        ek::retrieve_ek_pubcert(
            context,
            AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
        )
        .ok()
        .map(|bytes| trim_der(&bytes).to_vec())
    } else {
        None
    };
    let persistent = PersistentTpmHandle::new(ak_handle).map_err(command("name the AK handle"))?;
    let object = if is_present(context, persistent)? {
        context
            .tr_from_tpm_public(TpmHandle::Persistent(persistent))
            .map_err(command("look up the attestation key"))?
    } else {
        tracing::info!(
            "creating the attestation key in the TPM at persistent handle {ak_handle:#010x}"
        );
        create_ak(context, persistent)?
    };
    let key = KeyHandle::from(object);
    let (public, _, _) = context
        .read_public(key)
        .map_err(command("read the attestation key's public part"))?;
    let ak_public = super::device_key::p256_signing_key(&public, true).map_err(|found| {
        TpmError::ForeignKey {
            handle: ak_handle,
            found: found.to_owned(),
        }
    })?;
    let ak_public_area = public
        .marshall()
        .map_err(command("encode the attestation key's public area"))?;
    Ok((
        key,
        AttestationIdentity {
            ek_certificate,
            ak_public,
            ak_public_area,
        },
    ))
}

/// Creates the AK under the (RSA 2048, default template) EK and persists it. The EK and the
/// transient AK are flushed again, also on errors.
fn create_ak(
    context: &mut Context,
    handle: PersistentTpmHandle,
) -> Result<tss_esapi::handles::ObjectHandle, TpmError> {
    let ek = ek::create_ek_object_2(
        context,
        AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
        None,
    )
    .map_err(command("derive the endorsement key"))?;
    let loaded = ak::create_ak_2(
        context,
        ek,
        HashingAlgorithm::Sha256,
        AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP256),
        SignatureSchemeAlgorithm::EcDsa,
        None,
        None,
    )
    .and_then(|created| ak::load_ak(context, ek, None, created.out_private, created.out_public));
    let flushed = context.flush_context(ek.into());
    let loaded = loaded.map_err(command("create the attestation key"))?;
    flushed.map_err(command("flush the endorsement key"))?;
    let persisted = context.execute_with_session(Some(AuthSession::Password), |context| {
        context.evict_control(
            Provision::Owner,
            loaded.into(),
            Persistent::Persistent(handle),
        )
    });
    let flushed = context.flush_context(loaded.into());
    let persisted = persisted.map_err(command("make the attestation key persistent"))?;
    flushed.map_err(command("flush the transient attestation key"))?;
    Ok(persisted)
}

/// A quote over `QUOTED_PCRS` (SHA-256 bank) with `nonce` as qualifying data.
pub(super) fn quote(context: &mut Context, ak: KeyHandle, nonce: &[u8]) -> Result<Quote, TpmError> {
    let selection = PcrSelectionListBuilder::new()
        .with_selection(HashingAlgorithm::Sha256, &PCR_SLOTS)
        .build()
        .map_err(command("accept the PCR selection"))?;
    let qualifying = Data::try_from(nonce.to_vec()).map_err(command("accept the nonce"))?;
    let (attest, signature) = context
        .execute_with_session(Some(AuthSession::Password), |context| {
            context.quote(ak, qualifying, SignatureScheme::Null, selection.clone())
        })
        .map_err(command("quote the PCRs"))?;
    let pcr_data = context
        .execute_without_session(|context| pcr::read_all(context, selection))
        .map_err(command("read the PCRs"))?;
    let bank = pcr_data
        .pcr_bank(HashingAlgorithm::Sha256)
        .ok_or(TpmError::Unexpected {
            what: "the SHA-256 PCR bank",
        })?;
    let pcrs = QUOTED_PCRS
        .iter()
        .zip(PCR_SLOTS)
        .map(|(index, slot)| {
            bank.get_digest(slot)
                .map(|digest| (*index, digest.value().to_vec()))
                .ok_or(TpmError::Unexpected {
                    what: "a PCR value",
                })
        })
        .collect::<Result<_, _>>()?;
    let Signature::EcDsa(ecc) = signature else {
        return Err(TpmError::Unexpected {
            what: "the quote signature",
        });
    };
    Ok(Quote {
        attest: attest.marshall().map_err(command("encode the quote"))?,
        signature: EcdsaSignature {
            r: ecc.signature_r().value().to_vec(),
            s: ecc.signature_s().value().to_vec(),
        },
        pcrs,
    })
}

/// TPM2_ActivateCredential: releases a verifier's credential only if it was made for this
/// TPM's EK and for the name of the AK, i.e. proves that the AK lives in the same TPM as the EK.
/// The EK is derived for the duration and flushed again, as is its policy session.
pub(super) fn activate_credential(
    context: &mut Context,
    ak: KeyHandle,
    credential_blob: &[u8],
    encrypted_secret: &[u8],
) -> Result<Vec<u8>, TpmError> {
    let blob = IdObject::try_from(credential_blob.to_vec())
        .map_err(command("accept the credential blob"))?;
    let secret = EncryptedSecret::try_from(encrypted_secret.to_vec())
        .map_err(command("accept the encrypted secret"))?;
    let ek = ek::create_ek_object_2(
        context,
        AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
        None,
    )
    .map_err(command("derive the endorsement key"))?;
    let activated = with_ek_policy_session(context, |context, ek_session| {
        context.execute_with_sessions(
            (Some(AuthSession::Password), Some(ek_session), None),
            |context| context.activate_credential(ak, ek, blob, secret),
        )
    });
    let flushed = context.flush_context(ek.into());
    let credential = activated.map_err(command("activate the credential"))?;
    flushed.map_err(command("flush the endorsement key"))?;
    Ok(credential.value().to_vec())
}

/// Runs `f` with a policy session that satisfies the EK's default policy
/// (PolicySecret(TPM_RH_ENDORSEMENT)), and flushes the session afterwards.
fn with_ek_policy_session<T>(
    context: &mut Context,
    f: impl FnOnce(&mut Context, AuthSession) -> tss_esapi::Result<T>,
) -> tss_esapi::Result<T> {
    let session = context
        .start_auth_session(
            None,
            None,
            None,
            SessionType::Policy,
            SymmetricDefinition::AES_128_CFB,
            HashingAlgorithm::Sha256,
        )?
        .ok_or(tss_esapi::Error::WrapperError(
            tss_esapi::WrapperErrorKind::WrongValueFromTpm,
        ))?;
    let result = PolicySession::try_from(session)
        .and_then(|policy| {
            context.execute_with_nullauth_session(|context| {
                context.policy_secret(
                    policy,
                    AuthHandle::Endorsement,
                    Default::default(),
                    Default::default(),
                    Default::default(),
                    None,
                )
            })
        })
        .and_then(|_| f(context, session));
    // The command may have ended the session already; a failed flush then means nothing.
    let _ = context.flush_context(SessionHandle::from(session).into());
    result
}

/// NV indices are often larger than the certificate in them: keep the DER SEQUENCE only.
fn trim_der(bytes: &[u8]) -> &[u8] {
    let length = match bytes {
        [0x30, n, ..] if *n < 0x80 => Some(2 + usize::from(*n)),
        [0x30, 0x81, n, ..] => Some(3 + usize::from(*n)),
        [0x30, 0x82, hi, lo, ..] => Some(4 + (usize::from(*hi) << 8 | usize::from(*lo))),
        _ => None,
    };
    match length {
        Some(length) if length <= bytes.len() => &bytes[..length],
        _ => bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_nv_padding_is_dropped() {
        assert_eq!(trim_der(&[0x30, 2, 5, 0, 0xff, 0xff]), &[0x30, 2, 5, 0]);
        let long = [&[0x30, 0x82, 0x01, 0x00][..], &[7; 256], &[0xff; 10]].concat();
        assert_eq!(trim_der(&long).len(), 260);
        assert_eq!(trim_der(&[1, 2, 3]), &[1, 2, 3]);
    }
}
