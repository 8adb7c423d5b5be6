//! Everything that can go wrong in the accounts module. Messages name the user, token, file or
//! rule involved but never contain a password, hash, cookie, claim code or token secret.

use std::path::PathBuf;
use std::time::Duration;

use roomd_base::fsutil::AtomicWriteError;
use roomd_model::Role;

/// Why an accounts operation failed. `From<AccountsError> for ApiError` maps each variant to a
/// status code; the storage variants ([`Corrupt`](Self::Corrupt), [`Read`](Self::Read),
/// [`Write`](Self::Write), [`Remove`](Self::Remove), [`Hashing`](Self::Hashing)) become 500.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// A claim on a device that already has an admin (409).
    #[error("this device has already been claimed")]
    AlreadyClaimed,
    /// Login or pairing before the first admin exists (409).
    #[error("this device has not been claimed yet; claim it first (POST /api/v1/claim)")]
    NotClaimed,
    /// The claim code did not match (403); counts towards the source's lockout.
    #[error("the claim code is wrong")]
    WrongClaimCode,
    /// The username breaks the rule of [`validate_username`](super::validate_username) (422).
    #[error("invalid username {username:?}: {reason}")]
    InvalidUsername {
        /// The name as given, cut to 40 characters.
        username: String,
        /// Which part of the rule it breaks.
        reason: &'static str,
    },
    /// The new password breaks the password policy (422).
    #[error("the password is not acceptable: {reason}")]
    WeakPassword {
        /// Which rule it breaks (length, same as the username, …).
        reason: String,
    },
    /// Unknown user or wrong password; deliberately not saying which (401).
    #[error("wrong username or password")]
    BadCredentials,
    /// Too many failed attempts from this source, or a pairing request from it within 10 s of
    /// its last one (429).
    #[error("too many failed attempts; try again in {} s", retry_after.as_secs_f64().ceil())]
    LockedOut {
        /// Until the next attempt is accepted; sent as `Retry-After`.
        retry_after: Duration,
    },
    /// The username is taken (409).
    #[error("a user named {username:?} already exists")]
    UserExists {
        /// The name asked for.
        username: String,
    },
    /// No such user (404).
    #[error("there is no user named {username:?}")]
    UserNotFound {
        /// The name asked for, cut to 40 characters.
        username: String,
    },
    /// Deleting the only admin would leave the device unmanageable (409).
    #[error("{username:?} is the last admin; create another admin before deleting it")]
    LastAdmin {
        /// The admin that was to be deleted.
        username: String,
    },
    /// No token with this id (404).
    #[error("there is no API token with id {id:?}")]
    TokenNotFound {
        /// The id asked for, cut to 40 characters.
        id: String,
    },
    /// The token name is empty, too long or has control characters (422).
    #[error("invalid token name: {reason}")]
    InvalidTokenName {
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A user was to get a role meant for machines only ([`Role::Metrics`]) (422).
    #[error("the role {role} is for API tokens and client certificates, not for users")]
    RoleNotForUsers {
        /// The role asked for.
        role: Role,
    },
    /// A state file cannot be parsed or encoded; it is left as it is for a person to repair.
    #[error(
        "{} is damaged: {detail}. roomd does not replace it (that would lose its contents); \
         repair it or restore it from a backup",
        path.display()
    )]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it (never its secret contents).
        detail: String,
    },
    /// At startup: no users, but files show the device was claimed before; roomd refuses to
    /// start unclaimed.
    #[error(
        "{state_dir} was claimed before ({evidence}) but holds no users: roomd will not start \
         unclaimed over it, as that would let anyone on the network claim it again. Restore \
         users.json from a backup, or, to reset the device on purpose, remove {evidence}",
        state_dir = state_dir.display()
    )]
    ClaimedBefore {
        /// The state directory.
        state_dir: PathBuf,
        /// The files that show the earlier claim, named for the person who must act.
        evidence: String,
    },
    /// A state file exists but could not be read.
    #[error("could not read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// A state file (users, tokens, claim or pairing code, claimed marker) could not be written.
    #[error("could not save accounts state: {0}")]
    Write(#[from] AtomicWriteError),
    /// A file that must go (the used claim code) could not be deleted.
    #[error("could not remove {}: {source}", path.display())]
    Remove {
        /// The file.
        path: PathBuf,
        /// Why deleting failed.
        #[source]
        source: std::io::Error,
    },
    /// A pairing panel name is empty, longer than 48 characters or has control characters (422).
    #[error("a panel name must be 1 to 48 visible characters")]
    InvalidPanelName,
    /// The pairing request id is unknown, expired, used or replaced (404).
    #[error(
        "there is no pending pairing request with this id (it expired, was used, or a newer request replaced it); request pairing again"
    )]
    NoPairingRequest,
    /// The pairing code did not match (403); at 0 attempts left the request is gone.
    #[error(
        "the pairing code is wrong; {attempts_left} attempts left (the code is on the room display)"
    )]
    WrongPairingCode {
        /// Wrong codes the request still accepts.
        attempts_left: u32,
    },
    /// The account's login queue is full after many failures from anywhere (429).
    #[error(
        "this account has had many failed logins; its password checks are spaced out. Try again in {} s",
        retry_after.as_secs_f64().ceil()
    )]
    AccountPaced {
        /// Until the account accepts another attempt; sent as `Retry-After`.
        retry_after: Duration,
    },
    /// All password-check slots are in use (503); no attempt was counted.
    #[error(
        "too many password checks are running; try again in {} s",
        retry_after.as_secs_f64().ceil()
    )]
    Busy {
        /// A suggested wait; sent as `Retry-After`.
        retry_after: Duration,
    },
    /// The room-wide budget for pairing requests or wrong pairing codes is used up (429).
    #[error(
        "too many pairing attempts room-wide; try again in {} s (an admin can also create a room-control token)",
        retry_after.as_secs_f64().ceil()
    )]
    PairingBusy {
        /// Until the budget has room again; sent as `Retry-After`.
        retry_after: Duration,
    },
    /// argon2 failed (bad parameters or salt); a bug, not the caller's fault.
    #[error("password hashing failed: {detail}")]
    Hashing {
        /// argon2's message.
        detail: String,
    },
}

/// `value` cut to a length fit for an error message (user input can be as large as a request).
pub(crate) fn shorten(value: &str) -> String {
    const MAX_CHARS: usize = 40;
    if value.chars().count() <= MAX_CHARS {
        value.to_owned()
    } else {
        let mut short: String = value.chars().take(MAX_CHARS).collect();
        short.push('…');
        short
    }
}
