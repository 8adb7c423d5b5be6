//! Zero-touch provisioning (docs/provisioning.md): at its first start a new room fetches a
//! bundle from the URL in its configuration, verifies the bundle's signature with the key the
//! image trusts (`provisioning.trust_key`), checks that it is meant for this device, still
//! valid and newer than the last one applied, and applies it: CA certificates, then the
//! configuration as one patch through the core's typed configuration path.
//!
//! Every refusal leaves the room as it was and says why in `status.provisioning.error` (and the
//! event `provisioning.refused`). Failures that may pass (the server is not up yet) are retried
//! with jittered exponential backoff up to `provisioning.retry_max_s`.

pub mod bundle;
mod discover;
mod enrol;
mod fetch;
mod state;
mod worker;

pub use bundle::{BundleError, Envelope, FORMAT, Payload, TrustKey};
pub use discover::DiscoveryError;
pub use fetch::FetchError;
pub use state::{APPLIED_FILE, AppliedState, CA_FILE, DIR, EnrolledRecord};
pub use worker::{ProvisioningSetup, start};
