//! Sealing on the TPM thread: a small secret (a data-encryption key) stored as a TPM object
//! under the owner storage primary. The blob that leaves the TPM is encrypted and
//! integrity-protected by that primary, whose seed never leaves this TPM: the blob opens here
//! and nowhere else. It opens only under a PCR policy, too: while PCR 7 (the Secure Boot
//! state: firmware, its keys and the boot loader's signer) reads as it did when the secret
//! was sealed, so a box booted into something else cannot unseal it either.

use tss_esapi::Context;
use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::attributes::SessionAttributesBuilder;
use tss_esapi::constants::SessionType;
use tss_esapi::handles::SessionHandle;
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    Digest, KeyedHashScheme, PcrSelectionList, PcrSelectionListBuilder, PcrSlot, Private, Public,
    PublicBuilder, PublicKeyedHashParameters, SensitiveData, SymmetricDefinition,
};
use tss_esapi::traits::{Marshall, UnMarshall};

use super::TpmError;
use super::device_key::storage_primary_template;

/// Largest secret the TPM seals (TPM2B_SENSITIVE_DATA of the reference implementation).
pub const MAX_SEALED_BYTES: usize = 128;

fn command(action: &'static str) -> impl FnOnce(tss_esapi::Error) -> TpmError {
    move |source| TpmError::Command { action, source }
}

/// The PCRs a sealed secret is bound to: PCR 7 of the SHA-256 bank, the Secure Boot state.
const POLICY_PCRS: [PcrSlot; 1] = [PcrSlot::Slot7];

fn policy_pcrs() -> Result<PcrSelectionList, TpmError> {
    PcrSelectionListBuilder::new()
        .with_selection(HashingAlgorithm::Sha256, &POLICY_PCRS)
        .build()
        .map_err(command("select the policy PCRs"))
}

/// A policy session (or a trial one, to compute the digest) that has been told the PCR
/// values now; the caller flushes it.
fn pcr_policy_session(
    context: &mut Context,
    session_type: SessionType,
) -> Result<AuthSession, TpmError> {
    let session = context
        .start_auth_session(
            None,
            None,
            None,
            session_type,
            SymmetricDefinition::AES_128_CFB,
            HashingAlgorithm::Sha256,
        )
        .map_err(command("start a policy session"))?
        .ok_or(TpmError::Unexpected {
            what: "a policy session handle",
        })?;
    let (attributes, mask) = SessionAttributesBuilder::new()
        .with_decrypt(true)
        .with_encrypt(true)
        .build();
    let result = context
        .tr_sess_set_attributes(session, attributes, mask)
        .map_err(command("set the policy session's attributes"))
        .and_then(|()| {
            let policy = PolicySession::try_from(session)
                .map_err(command("use the session as a policy session"))?;
            // An empty digest: the TPM takes the PCRs' current values.
            context
                .policy_pcr(policy, Digest::default(), policy_pcrs()?)
                .map_err(command("bind the session to the PCR values"))
        });
    match result {
        Ok(()) => Ok(session),
        Err(e) => {
            let _ = context.flush_context(SessionHandle::from(session).into());
            Err(e)
        }
    }
}

/// The policy digest of "PCR 7 as it reads now".
fn pcr_policy_digest(context: &mut Context) -> Result<Digest, TpmError> {
    let session = pcr_policy_session(context, SessionType::Trial)?;
    let digest = PolicySession::try_from(session)
        .map_err(command("use the session as a policy session"))
        .and_then(|policy| {
            context
                .policy_get_digest(policy)
                .map_err(command("read the policy digest"))
        });
    let flushed = context.flush_context(SessionHandle::from(session).into());
    let digest = digest?;
    flushed.map_err(command("flush the trial policy session"))?;
    Ok(digest)
}

/// Seals `secret`; returns the blob to store (public and private parts of the sealed object).
pub(super) fn seal(context: &mut Context, secret: &[u8]) -> Result<Vec<u8>, TpmError> {
    let data = SensitiveData::try_from(secret.to_vec()).map_err(command("accept the secret"))?;
    let policy = context.execute_without_session(pcr_policy_digest)?;
    let template = sealed_object_template(policy)?;
    let primary_template = storage_primary_template()?;
    context.execute_with_session(Some(AuthSession::Password), |context| {
        let primary = context
            .create_primary(Hierarchy::Owner, primary_template, None, None, None, None)
            .map_err(command("create the owner storage primary key"))?
            .key_handle;
        let created = context.create(primary, template, None, Some(data), None, None);
        let flushed = context.flush_context(primary.into());
        let created = created.map_err(command("seal the secret"))?;
        flushed.map_err(command("flush the storage primary key"))?;
        let public = created
            .out_public
            .marshall()
            .map_err(command("encode the sealed object"))?;
        Ok(encode_blob(&public, created.out_private.value()))
    })
}

/// Opens a blob made by `seal` on this TPM.
pub(super) fn unseal(context: &mut Context, blob: &[u8]) -> Result<Vec<u8>, TpmError> {
    let (public, private) = decode_blob(blob).ok_or(TpmError::Unexpected {
        what: "a sealed blob",
    })?;
    let public = Public::unmarshall(public).map_err(command("read the sealed object"))?;
    let private = Private::try_from(private.to_vec()).map_err(command("read the sealed object"))?;
    let primary_template = storage_primary_template()?;
    context.execute_with_session(Some(AuthSession::Password), |context| {
        let primary = context
            .create_primary(Hierarchy::Owner, primary_template, None, None, None, None)
            .map_err(command("create the owner storage primary key"))?
            .key_handle;
        let loaded = context.load(primary, private, public);
        let flushed = context.flush_context(primary.into());
        let loaded = loaded.map_err(command("load the sealed object (sealed by another TPM?)"))?;
        flushed.map_err(command("flush the storage primary key"))?;
        Ok(loaded)
    })
    .and_then(|loaded| {
        // The object's only authorisation is its PCR policy.
        let unsealed = context.execute_without_session(|context| {
            let session = pcr_policy_session(context, SessionType::Policy)?;
            let unsealed = context.execute_with_session(Some(session), |context| {
                context.unseal(loaded.into())
            });
            let flushed = context.flush_context(SessionHandle::from(session).into());
            let unsealed = unsealed.map_err(command(
                "unseal the secret (PCR 7, the Secure Boot state, differs from when it was sealed?)",
            ))?;
            flushed.map_err(command("flush the policy session"))?;
            Ok(unsealed)
        });
        let flushed = context.flush_context(loaded.into());
        let unsealed = unsealed?;
        flushed.map_err(command("flush the sealed object"))?;
        Ok(unsealed.value().to_vec())
    })
}

/// A data object only this TPM can load, and unseal only under the PCR `policy`.
fn sealed_object_template(policy: Digest) -> Result<Public, TpmError> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_user_with_auth(false)
        .with_no_da(true)
        .build()
        .map_err(command("accept the sealed object attributes"))?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::KeyedHash)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_auth_policy(policy)
        .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
        .with_keyed_hash_unique_identifier(Digest::default())
        .build()
        .map_err(command("accept the sealed object template"))
}

/// `len(public) u16 || public || len(private) u16 || private`.
fn encode_blob(public: &[u8], private: &[u8]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(4 + public.len() + private.len());
    for part in [public, private] {
        blob.extend_from_slice(&(part.len() as u16).to_be_bytes());
        blob.extend_from_slice(part);
    }
    blob
}

fn decode_blob(blob: &[u8]) -> Option<(&[u8], &[u8])> {
    let (public, rest) = take_sized(blob)?;
    let (private, rest) = take_sized(rest)?;
    rest.is_empty().then_some((public, private))
}

fn take_sized(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (size, rest) = bytes.split_first_chunk::<2>()?;
    let size = usize::from(u16::from_be_bytes(*size));
    (rest.len() >= size).then(|| rest.split_at(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_and_truncation_is_caught() {
        let blob = encode_blob(b"public part", b"private");
        assert_eq!(
            decode_blob(&blob),
            Some((&b"public part"[..], &b"private"[..]))
        );
        assert_eq!(decode_blob(&blob[..blob.len() - 1]), None);
        assert_eq!(decode_blob(&[blob.as_slice(), b"x"].concat()), None);
        assert_eq!(decode_blob(&[]), None);
    }
}
