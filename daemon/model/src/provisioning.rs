//! Zero-touch provisioning as data: `status.provisioning`, which the provisioning worker
//! (`roomd-provisioning`) fills and the room core publishes, and the reports it sends.

use serde::Serialize;

/// `status.provisioning.state`: where provisioning stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProvisioningState {
    /// Not configured (no `[provisioning]` URL or DNS-SD).
    Off,
    /// Looking for the bundle's server (DNS-SD).
    Searching,
    /// Downloading and checking the bundle.
    Fetching,
    /// A bundle was applied (now or at an earlier start); `serial` says which.
    Applied,
    /// The bundle was refused (signature, device, validity, replay, configuration); the room is
    /// as it was. `error` names the problem.
    Refused,
    /// The bundle could not be fetched or applied for a reason that may pass (network, server,
    /// disk); the worker tries again.
    Failed,
}

/// `status.provisioning.enrolment.state`: where the certificate enrolment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnrolmentState {
    /// The bundle asked for none.
    None,
    /// Talking to the CA.
    Enrolling,
    /// A CA-issued chain for the device key is installed and served.
    Enrolled,
    /// The CA refused or could not be reached; `error` says why.
    Failed,
}

/// `status.provisioning.enrolment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnrolmentStatus {
    /// Where the enrolment stands.
    pub state: EnrolmentState,
    /// The issuer of the installed certificate (distinguished name); empty until enrolled.
    pub issuer: String,
    /// When the installed certificate expires (RFC 3339); empty until enrolled.
    pub not_after: String,
    /// Why the last enrolment failed; empty when it did not.
    pub error: String,
}

impl EnrolmentStatus {
    /// No enrolment asked for.
    pub fn none() -> EnrolmentStatus {
        EnrolmentStatus {
            state: EnrolmentState::None,
            issuer: String::new(),
            not_after: String::new(),
            error: String::new(),
        }
    }
}

/// `status.provisioning` (present only when provisioning is configured).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProvisioningStatus {
    /// Where provisioning stands.
    pub state: ProvisioningState,
    /// Where the bundle comes from (its URL); empty until known.
    pub source: String,
    /// The serial of the applied bundle; `null` before one was applied.
    pub serial: Option<u64>,
    /// Why the last bundle was refused or the last attempt failed; empty otherwise.
    pub error: String,
    /// The certificate enrolment the bundle asked for.
    pub enrolment: EnrolmentStatus,
}

impl ProvisioningStatus {
    /// Before the first attempt.
    pub fn starting(source: &str) -> ProvisioningStatus {
        ProvisioningStatus {
            state: ProvisioningState::Searching,
            source: source.to_owned(),
            serial: None,
            error: String::new(),
            enrolment: EnrolmentStatus::none(),
        }
    }
}

/// What the provisioning worker tells the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvisioningReport {
    /// The new `status.provisioning`, without an event.
    Status(ProvisioningStatus),
    /// A bundle was applied (event `provisioning.applied`); then the status.
    Applied {
        /// Where it came from.
        source: String,
        /// Its serial.
        serial: u64,
        /// The status after applying it.
        status: ProvisioningStatus,
    },
    /// A bundle was refused (event `provisioning.refused`); then the status.
    Refused {
        /// Where it came from.
        source: String,
        /// What is wrong with it.
        reason: String,
        /// The status after refusing it.
        status: ProvisioningStatus,
    },
}
