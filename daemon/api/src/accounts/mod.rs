//! Accounts: claiming a new device, users with roles and passwords, login lockout, browser
//! sessions, API tokens, and the role → permission table. No HTTP here: the API calls
//! [`Accounts`].
//!
//! State lives in the state directory: `users.json`, `tokens.json` (both 0600, versioned JSON,
//! replaced atomically) and, while unclaimed, `claim-code`. Sessions are in memory only.

mod budget;
mod claim;
mod clock;
mod error;
mod facade;
mod lockout;
mod pacing;
mod pairing;
mod password;
mod password_checks;
mod permission;
mod policy;
mod principal;
mod sessions;
mod store;
mod timestamp;
mod tokens;
mod username;
mod users;

pub use claim::CLAIM_CODE_LEN;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::AccountsError;
pub use facade::{Accounts, CLAIM_CODE_FILE, LoginAttempt, TOKENS_FILE, USERS_FILE};
pub use pairing::{MAX_CODE_ATTEMPTS, PAIRING_CODE_FILE, PAIRING_TTL, PairingRequest};
pub use password::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS};
pub use password_checks::CheckPermit;
pub use permission::{Permission, allows};
pub use policy::AccountsPolicy;
pub use principal::{Principal, PrincipalKind};
pub use roomd_model::{Role, UnknownRole};
pub use roomd_model::{Secret, random_base64url, sha256};
pub use sessions::{NewSession, SessionInfo};
pub use tokens::{TOKEN_PREFIX, TokenInfo};
pub use username::{MAX_USERNAME_LEN, validate_username};
pub use users::UserInfo;

#[cfg(test)]
mod tests;
