//! SIP as data: `status.sip`, which the SIP worker (`roomd-sip`) fills and the room core
//! publishes.

use serde::Serialize;

/// `status.sip` (present only when `sip.registrar` is set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SipStatus {
    /// The room's registration with its registrar.
    pub registration: SipRegistration,
}

/// Where the room's SIP registration stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SipRegistration {
    /// `unregistered`, `registering`, `registered` or `failed`.
    pub state: RegistrationState,
    /// `sip.registrar` as configured.
    pub registrar: String,
    /// Through which server the room registered last (`sip.proxy`, `sip.fallback_proxy` or
    /// the registrar); empty before the first registration.
    pub via: String,
    /// Seconds the registrar granted at the last successful registration; 0 when not
    /// registered. The room registers again when three quarters of them have passed.
    pub expires_in_s: u32,
    /// Why the last attempt failed; empty when it did not.
    pub error: String,
}

/// The state of a SIP registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationState {
    /// Not registered and not trying (e.g. while roomd stops).
    Unregistered,
    /// A REGISTER is under way.
    Registering,
    /// The registrar accepted the room's binding.
    Registered,
    /// The last attempt failed; the room tries again after a pause.
    Failed,
}

impl SipStatus {
    /// Before the first attempt to register.
    pub fn starting(registrar: &str) -> SipStatus {
        SipStatus {
            registration: SipRegistration {
                state: RegistrationState::Registering,
                registrar: registrar.to_owned(),
                via: String::new(),
                expires_in_s: 0,
                error: String::new(),
            },
        }
    }
}
