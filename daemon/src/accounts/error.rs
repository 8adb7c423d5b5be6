//! Everything that can go wrong in the accounts module. Messages name the user, token, file or
//! rule involved but never contain a password, hash, cookie, claim code or token secret.

use std::path::PathBuf;
use std::time::Duration;

use crate::fsutil::AtomicWriteError;

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("this device has already been claimed")]
    AlreadyClaimed,
    #[error("this device has not been claimed yet; claim it first (POST /api/v1/claim)")]
    NotClaimed,
    #[error("the claim code is wrong")]
    WrongClaimCode,
    #[error("invalid username {username:?}: {reason}")]
    InvalidUsername {
        username: String,
        reason: &'static str,
    },
    #[error("the password is not acceptable: {reason}")]
    WeakPassword { reason: String },
    #[error("wrong username or password")]
    BadCredentials,
    #[error("too many failed attempts; try again in {} s", retry_after.as_secs_f64().ceil())]
    LockedOut { retry_after: Duration },
    #[error("a user named {username:?} already exists")]
    UserExists { username: String },
    #[error("there is no user named {username:?}")]
    UserNotFound { username: String },
    #[error("{username:?} is the last admin; create another admin before deleting it")]
    LastAdmin { username: String },
    #[error("there is no API token with id {id:?}")]
    TokenNotFound { id: String },
    #[error("invalid token name: {reason}")]
    InvalidTokenName { reason: &'static str },
    #[error(
        "{} is damaged: {detail}. roomd does not replace it (that would lose its contents); \
         repair it or restore it from a backup",
        path.display()
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "{state_dir} was claimed before ({evidence}) but holds no users: roomd will not start \
         unclaimed over it, as that would let anyone on the network claim it again. Restore \
         users.json from a backup, or, to reset the device on purpose, remove {evidence}",
        state_dir = state_dir.display()
    )]
    ClaimedBefore {
        state_dir: PathBuf,
        /// The files that show the earlier claim, named for the person who must act.
        evidence: String,
    },
    #[error("could not read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not save accounts state: {0}")]
    Write(#[from] AtomicWriteError),
    #[error("could not remove {}: {source}", path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a panel name must be 1 to 48 visible characters")]
    InvalidPanelName,
    #[error(
        "there is no pending pairing request with this id (it expired, was used, or a newer request replaced it); request pairing again"
    )]
    NoPairingRequest,
    #[error(
        "the pairing code is wrong; {attempts_left} attempts left (the code is on the room display)"
    )]
    WrongPairingCode { attempts_left: u32 },
    #[error(
        "this account has had many failed logins; its password checks are spaced out. Try again in {} s",
        retry_after.as_secs_f64().ceil()
    )]
    AccountPaced { retry_after: Duration },
    #[error(
        "too many password checks are running; try again in {} s",
        retry_after.as_secs_f64().ceil()
    )]
    Busy { retry_after: Duration },
    #[error(
        "too many pairing attempts room-wide; try again in {} s (an admin can also create a room-control token)",
        retry_after.as_secs_f64().ceil()
    )]
    PairingBusy { retry_after: Duration },
    #[error("password hashing failed: {detail}")]
    Hashing { detail: String },
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
