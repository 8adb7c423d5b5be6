//! SIP as data: `status.sip`, which the SIP worker (`roomd-sip`) fills and the room core
//! publishes.

use serde::Serialize;

/// `status.sip` (present only when `sip.registrar` is set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SipStatus {
    /// The room's registration with its registrar.
    pub registration: SipRegistration,
    /// The call ringing now (`meeting.answer`, `meeting.decline`); `null` when none. The room
    /// core owns it: the SIP worker's reports leave it as it is.
    pub incoming: Option<IncomingCall>,
}

/// A call in that rings: who calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncomingCall {
    /// The call's id for `meeting.answer` / `meeting.decline`.
    pub id: String,
    /// The caller's display name from its From header; empty when it sent none.
    pub display_name: String,
    /// The caller's address (`sip:user@host`, without parameters).
    pub uri: String,
    /// When it started ringing (RFC 3339).
    pub since: String,
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
            incoming: None,
        }
    }
}
