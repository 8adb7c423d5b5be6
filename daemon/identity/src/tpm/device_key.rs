//! Finding, checking and (once) creating the persistent device key. Runs on the TPM thread.

use tss_esapi::Context;
use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::constants::CapabilityType;
use tss_esapi::handles::{KeyHandle, ObjectHandle, PersistentTpmHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::dynamic_handles::Persistent;
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::resource_handles::{Hierarchy, Provision};
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    CapabilityData, EccPoint, EccScheme, HashScheme, Public, PublicBuilder,
    PublicEccParametersBuilder, SymmetricDefinitionObject,
};
use tss_esapi::utils::create_unrestricted_signing_ecc_public;

use super::{P256PublicKey, TpmError};

fn command(action: &'static str) -> impl FnOnce(tss_esapi::Error) -> TpmError {
    move |source| TpmError::Command { action, source }
}

/// The device key's handle and public key, creating the key if the TPM has none yet.
pub(super) fn find_or_create(
    context: &mut Context,
    handle: u32,
) -> Result<(KeyHandle, P256PublicKey), TpmError> {
    let persistent = PersistentTpmHandle::new(handle).map_err(command("name the handle"))?;
    let object = if is_present(context, persistent)? {
        // Without a session: tr_from_tpm_public inside a password session crashes in
        // Esys_TR_FromTPMPublic_Finish (rust-tss-esapi issue 565).
        context
            .tr_from_tpm_public(TpmHandle::Persistent(persistent))
            .map_err(command("look up the persistent device key"))?
    } else {
        tracing::info!("creating the device key in the TPM at persistent handle {handle:#010x}");
        create(context, persistent)?
    };
    let key = KeyHandle::from(object);
    let (public, _, _) = context
        .read_public(key)
        .map_err(command("read the device key's public part"))?;
    let public_key = p256_signing_key(&public, false).map_err(|found| TpmError::ForeignKey {
        handle,
        found: found.to_owned(),
    })?;
    Ok((key, public_key))
}

pub(super) fn is_present(
    context: &mut Context,
    handle: PersistentTpmHandle,
) -> Result<bool, TpmError> {
    let (data, _) = context
        .get_capability(CapabilityType::Handles, u32::from(handle), 1)
        .map_err(command("list its persistent handles"))?;
    Ok(match data {
        CapabilityData::Handles(list) => list.into_inner().contains(&TpmHandle::Persistent(handle)),
        _ => false,
    })
}

/// Derives the owner storage primary, creates the signing key under it, and makes that key
/// persistent. Every transient object is flushed again, also on errors: swtpm and TPMs without
/// a resource manager have only a few object slots.
fn create(context: &mut Context, handle: PersistentTpmHandle) -> Result<ObjectHandle, TpmError> {
    let signing_template = create_unrestricted_signing_ecc_public(
        EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)),
        EccCurve::NistP256,
    )
    .map_err(command("accept the signing key template"))?;
    let primary_template = storage_primary_template()?;
    context.execute_with_session(Some(AuthSession::Password), |context| {
        let primary = context
            .create_primary(Hierarchy::Owner, primary_template, None, None, None, None)
            .map_err(command("create the owner storage primary key"))?
            .key_handle;
        let created = context.create(primary, signing_template, None, None, None, None);
        let loaded = created
            .and_then(|created| context.load(primary, created.out_private, created.out_public));
        let flushed = context.flush_context(primary.into());
        let loaded = loaded.map_err(command("create the device key"))?;
        flushed.map_err(command("flush the storage primary key"))?;
        let persisted = context.evict_control(
            Provision::Owner,
            loaded.into(),
            Persistent::Persistent(handle),
        );
        let flushed = context.flush_context(loaded.into());
        let persisted = persisted.map_err(command("make the device key persistent"))?;
        flushed.map_err(command("flush the transient device key"))?;
        Ok(persisted)
    })
}

/// The usual ECC storage root key template (TCG provisioning guidance): restricted decryption
/// key, AES-128-CFB for its children, no auth value.
pub(super) fn storage_primary_template() -> Result<Public, TpmError> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build()
        .map_err(command("accept the storage key attributes"))?;
    let parameters = PublicEccParametersBuilder::new_restricted_decryption_key(
        SymmetricDefinitionObject::AES_128_CFB,
        EccCurve::NistP256,
    )
    .build()
    .map_err(command("accept the storage key parameters"))?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(parameters)
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
        .map_err(command("accept the storage key template"))
}

/// The public key, if `public` describes a TPM-bound P-256 signing key: `restricted` for an
/// attestation key (it signs only data the TPM made), unrestricted for the device key.
pub(super) fn p256_signing_key(
    public: &Public,
    restricted: bool,
) -> Result<P256PublicKey, &'static str> {
    let Public::Ecc {
        object_attributes,
        parameters,
        unique,
        ..
    } = public
    else {
        return Err("not an ECC key");
    };
    if parameters.ecc_curve() != EccCurve::NistP256 {
        return Err("not on curve P-256");
    }
    let bound = object_attributes.fixed_tpm();
    if !object_attributes.sign_encrypt() || object_attributes.restricted() != restricted {
        return Err(if restricted {
            "not a restricted signing key bound to the TPM"
        } else {
            "not an unrestricted signing key"
        });
    }
    if !bound {
        return Err(if restricted {
            "not a restricted signing key bound to the TPM"
        } else {
            "its private part may leave the TPM"
        });
    }
    P256PublicKey::from_coordinates(unique.x().value(), unique.y().value())
        .ok_or("its public point is malformed")
}
