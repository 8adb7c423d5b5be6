//! roomd's data model: the configuration file and its checks, roles, secrets as values, and
//! the outbound policy. No I/O beyond reading and atomically writing the configuration file,
//! no GStreamer, no TPM: every other crate, and tools, can depend on it.

pub mod config;
pub mod factory_reset;
pub mod fleet;
pub mod host;
mod identity_status;
pub mod outbound;
pub mod provisioning;
mod role;
mod secret;
pub mod sip;
pub mod update;

pub use identity_status::IdentityStatus;
pub use role::{Role, UnknownRole};
pub use secret::{Secret, random_base64url, sha256, sha256_hex};
