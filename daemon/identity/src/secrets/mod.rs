//! Secrets at rest (stored credentials for meeting servers, signing keys of later features),
//! encrypted so that a copied disk is useless without the box.
//!
//! Each secret is a file `<dir>/<name>.secret`, encrypted with AES-256-GCM under one
//! data-encryption key (DEK); the file name is the associated data, so files cannot be swapped.
//! The DEK itself is sealed by the TPM (`dek.sealed`), which opens it only on this TPM. With
//! `identity.backend = "software"` there is no TPM: the DEK is a 0600 file (`dek.key`), which
//! protects against nothing but other local users.

mod error;
mod store;

pub use error::SecretsError;
pub use store::{KeyProtection, SecretStore};
