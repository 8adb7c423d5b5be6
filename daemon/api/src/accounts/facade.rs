//! [`Accounts`]: the one object the API uses for claiming, logging in, sessions, users and
//! tokens. Shareable behind an `Arc`; each part has its own lock and no lock is held while a
//! password is hashed or verified.
//!
//! Lock order, where two are held: claim code, then users, then sessions.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::claim;
use super::clock::{Clock, SystemClock};
use super::error::AccountsError;
use super::lockout::{Lockout, LockoutKey};
use super::pacing::{AccountPacing, Turn};
use super::pairing::{Pairing, PairingRequest};
use super::password::{
    MAX_PASSWORD_BYTES, check_password_policy, hash_password, prepare_dummy_hash,
    verify_password_or_dummy,
};
use super::password_checks::{CheckPermit, PasswordChecks};
use super::policy::AccountsPolicy;
use super::principal::{Principal, PrincipalKind};
use super::sessions::{NewSession, SessionInfo, SessionStore};
use super::tokens::{PAIRING_CREATOR, TokenInfo, TokenStore};
use super::username::validate_username;
use super::users::{UserInfo, UserStore};
use roomd_base::sync::{lock, read, write};
use roomd_model::Role;
use roomd_model::Secret;

/// The users file in the state directory (mode 0600).
pub const USERS_FILE: &str = "users.json";
/// The API tokens file in the state directory (mode 0600; token hashes only).
pub const TOKENS_FILE: &str = "tokens.json";
/// The claim code file in the state directory, present while the device is unclaimed.
pub const CLAIM_CODE_FILE: &str = "claim-code";
/// Failed logins from one source (all usernames together) allowed per failed login of one
/// username from it, before that source is delayed too: room for typos across a few names,
/// not for spraying guesses over many.
const SOURCE_THRESHOLD_FACTOR: u32 = 4;
/// A username longer than this cannot exist ([`validate_username`]).
const MAX_LOGIN_NAME_CHARS: usize = super::username::MAX_USERNAME_LEN;

/// A login that passed the fast checks of [`Accounts::begin_login`].
#[derive(Debug)]
pub struct LoginAttempt {
    username: String,
    source: IpAddr,
    /// How long the account's pacing makes this attempt wait before its password is checked.
    pub wait: Duration,
}

/// Users, API tokens, sessions, claiming, pairing and login throttling of one device, backed by
/// files in the state directory. Open it once with [`Accounts::open`] and share it.
#[derive(Debug)]
pub struct Accounts {
    claim_code_path: PathBuf,
    /// `Some` while the device is unclaimed.
    claim_code: Mutex<Option<Secret>>,
    users: RwLock<UserStore>,
    tokens: RwLock<TokenStore>,
    sessions: SessionStore,
    /// Per username and source; also claim and pairing attempts per source.
    lockout: Lockout,
    /// Per source, all usernames together.
    source_lockout: Lockout,
    /// Per username, all sources together.
    pacing: AccountPacing,
    password_checks: PasswordChecks,
    policy: Mutex<AccountsPolicy>,
    pairing: Pairing,
}

impl Accounts {
    /// Loads users and tokens from `state_dir` (which must exist). On an unclaimed device, makes
    /// or reuses the claim code and logs it for whoever has the console. Hashes one password
    /// (see `prepare_dummy_hash`), so it takes a moment: call it at startup.
    pub fn open(state_dir: &Path, policy: AccountsPolicy) -> Result<Accounts, AccountsError> {
        Self::open_with_clock(state_dir, policy, Arc::new(SystemClock))
    }

    /// [`Accounts::open`] with a chosen clock for lockout delays and session expiry (tests).
    pub fn open_with_clock(
        state_dir: &Path,
        policy: AccountsPolicy,
        clock: Arc<dyn Clock>,
    ) -> Result<Accounts, AccountsError> {
        let users = UserStore::load(&state_dir.join(USERS_FILE))?;
        prepare_dummy_hash();
        let tokens = TokenStore::load(&state_dir.join(TOKENS_FILE))?;
        let claim_code_path = state_dir.join(CLAIM_CODE_FILE);
        let claim_code = if users.is_empty() {
            claim::refuse_if_claimed_before(state_dir, &[USERS_FILE, TOKENS_FILE])?;
            let code = claim::load_or_create(&claim_code_path)?;
            // The console is how the owner learns it; never the API's log.
            claim::announce(&code);
            Some(code)
        } else {
            // Devices claimed before the marker existed get it now.
            claim::mark_claimed(state_dir)?;
            // Left over if roomd stopped between saving the first admin and deleting the code.
            if let Err(error) = claim::remove(&claim_code_path) {
                tracing::warn!(%error, "could not delete the stale claim code file");
            }
            None
        };
        Ok(Accounts {
            claim_code_path,
            claim_code: Mutex::new(claim_code),
            users: RwLock::new(users),
            tokens: RwLock::new(tokens),
            sessions: SessionStore::new(policy.session_idle, clock.clone()),
            lockout: Lockout::new(policy.lockout_threshold, policy.lockout_max, clock.clone()),
            source_lockout: Lockout::new(
                source_threshold(policy.lockout_threshold),
                policy.lockout_max,
                clock.clone(),
            ),
            pacing: AccountPacing::new(clock.clone()),
            password_checks: PasswordChecks::for_this_device(),
            policy: Mutex::new(policy),
            pairing: Pairing::new(state_dir, clock),
        })
    }

    /// Applies changed configuration; takes effect for existing lockouts and sessions too.
    pub fn set_policy(&self, policy: AccountsPolicy) {
        self.lockout
            .set_limits(policy.lockout_threshold, policy.lockout_max);
        self.source_lockout.set_limits(
            source_threshold(policy.lockout_threshold),
            policy.lockout_max,
        );
        self.sessions.set_idle_timeout(policy.session_idle);
        *lock(&self.policy) = policy;
    }

    /// The limits in force.
    pub fn policy(&self) -> AccountsPolicy {
        *lock(&self.policy)
    }

    /// Whether the first admin exists (the claim code is void then).
    pub fn is_claimed(&self) -> bool {
        lock(&self.claim_code).is_none()
    }

    /// The claim code while the device is unclaimed (for the room display).
    pub fn claim_code(&self) -> Option<Secret> {
        lock(&self.claim_code).clone()
    }

    /// Creates the first admin if `code` is the claim code. Works once; afterwards the code is
    /// void and its file deleted. Wrong codes count towards the lockout of `source`.
    /// Slow (hashes the password): call on a blocking thread.
    pub fn claim(
        &self,
        code: &str,
        username: &str,
        password: &str,
        source: IpAddr,
    ) -> Result<UserInfo, AccountsError> {
        if self.is_claimed() {
            return Err(AccountsError::AlreadyClaimed);
        }
        // Validation reveals nothing about the code, so it comes before the lockout: a person
        // fixing a too-short password is not counted as guessing.
        validate_username(username)?;
        check_password_policy(username, password)?;
        let key = LockoutKey::claim(source);
        self.begin_attempt(&key)?;
        let expected = self.claim_code().ok_or(AccountsError::AlreadyClaimed)?;
        if !claim::code_matches(&expected, code) {
            tracing::warn!(%source, "wrong claim code");
            return Err(AccountsError::WrongClaimCode);
        }
        let password_hash = hash_password(password)?;

        let mut claim_code = lock(&self.claim_code);
        // Another claim may have won while this one was hashing.
        if claim_code.is_none() {
            return Err(AccountsError::AlreadyClaimed);
        }
        let admin = write(&self.users).insert(username, Role::Admin, password_hash)?;
        *claim_code = None;
        drop(claim_code);
        let state_dir = self.claim_code_path.parent().unwrap_or(Path::new("."));
        if let Err(error) = claim::mark_claimed(state_dir) {
            // users.json already proves the claim; the marker is found missing at next start.
            tracing::warn!(%error, "could not write the claimed marker");
        }

        self.lockout.record_success(&key);
        if let Err(error) = claim::remove(&self.claim_code_path) {
            // The code is already void in memory and is deleted at the next start.
            tracing::warn!(%error, "could not delete the claim code file");
        }
        tracing::info!(username, %source, "device claimed; first admin created");
        Ok(admin)
    }

    /// Starts a login: the fast checks that need no password hash. Refused (429) if `source` or
    /// this username from `source` is locked out, or if the account's pacing queue is full
    /// (see `accounts::pacing`). The attempt counts as a failure from here on until it succeeds
    /// or is cancelled. Wait [`LoginAttempt::wait`] (without holding a thread), then get a
    /// [`Accounts::password_check_permit`] and call [`Accounts::finish_login`].
    pub fn begin_login(
        &self,
        username: &str,
        source: IpAddr,
    ) -> Result<LoginAttempt, AccountsError> {
        // Nobody can log in before the first admin exists; say so instead of "wrong password".
        if !self.is_claimed() {
            return Err(AccountsError::NotClaimed);
        }
        let source_key = LockoutKey::source(source);
        self.source_lockout
            .begin_attempt(&source_key)
            .map_err(|retry_after| AccountsError::LockedOut { retry_after })?;
        let key = LockoutKey::login(username, source);
        if let Err(error) = self.begin_attempt(&key) {
            // Refused before any guess was checked: not a further failure of the source.
            self.source_lockout.cancel_attempt(&source_key);
            return Err(error);
        }
        let attempt = LoginAttempt {
            // One character more than any username may have, so that a longer name stays one
            // no user has (cut to the limit, it could be someone's).
            username: username.chars().take(MAX_LOGIN_NAME_CHARS + 1).collect(),
            source,
            wait: Duration::ZERO,
        };
        match self.pacing.begin(username, source) {
            Turn::After(wait) => Ok(LoginAttempt { wait, ..attempt }),
            Turn::Refused { retry_after } => {
                self.source_lockout.cancel_attempt(&source_key);
                self.lockout.cancel_attempt(&key);
                Err(AccountsError::AccountPaced { retry_after })
            }
        }
    }

    /// A slot among the password checks allowed at once, or [`AccountsError::Busy`] (503); a
    /// busy answer cancels `attempt`, as no password was checked.
    pub fn password_check_permit(
        &self,
        attempt: &LoginAttempt,
    ) -> Result<CheckPermit, AccountsError> {
        self.password_checks.try_start().inspect_err(|_| {
            self.source_lockout
                .cancel_attempt(&LockoutKey::source(attempt.source));
            self.lockout
                .cancel_attempt(&LockoutKey::login(&attempt.username, attempt.source));
            self.pacing.cancel(&attempt.username);
        })
    }

    /// Checks the password of a begun login and opens a session. Unknown users cost the same
    /// time as wrong passwords. Slow (verifies a password hash): call on a blocking thread.
    pub fn finish_login(
        &self,
        attempt: LoginAttempt,
        password: &str,
        permit: CheckPermit,
    ) -> Result<NewSession, AccountsError> {
        let LoginAttempt {
            username, source, ..
        } = attempt;
        let stored_hash = read(&self.users)
            .credentials(&username)
            .map(|(_, hash)| hash);
        // Over-long passwords can never have been set; no point hashing them.
        let verified = password.len() <= MAX_PASSWORD_BYTES
            && verify_password_or_dummy(stored_hash.as_ref().map(Secret::expose), password);
        drop(permit);
        if !verified {
            // Operators need to see guessing in the log. The name is shown as the audit log
            // shows it (at most 64 characters) and quoted, so it cannot forge log lines.
            tracing::warn!(username = ?username, %source, "failed login");
            return Err(AccountsError::BadCredentials);
        }
        // Holding the users lock while creating the session so that a concurrent delete cannot
        // slip in between and leave a session for a deleted user.
        let users = read(&self.users);
        let role = users.role(&username).ok_or(AccountsError::BadCredentials)?;
        let session = self.sessions.create(&username, role);
        drop(users);
        self.lockout
            .record_success(&LockoutKey::login(&username, source));
        // Only this attempt is forgiven, not the source's other failures: logging into one's
        // own account between guesses at others must not reset the count.
        self.source_lockout
            .cancel_attempt(&LockoutKey::source(source));
        self.pacing.succeeded(&username, source);
        Ok(session)
    }

    /// [`Accounts::begin_login`], the wait (on this thread), a permit and
    /// [`Accounts::finish_login`] in one call, for tests.
    #[cfg(test)]
    pub fn login(
        &self,
        username: &str,
        password: &str,
        source: IpAddr,
    ) -> Result<NewSession, AccountsError> {
        let attempt = self.begin_login(username, source)?;
        std::thread::sleep(attempt.wait);
        let permit = self.password_check_permit(&attempt)?;
        self.finish_login(attempt, password, permit)
    }

    /// The live session for a cookie value; refreshes its idle timer.
    pub fn session(&self, cookie: &str) -> Option<SessionInfo> {
        self.sessions.get(cookie)
    }

    /// Whether the session for `cookie` is still live, without refreshing its idle timer: an
    /// open WebSocket checks this, and holding a socket open is not using the session.
    pub fn session_is_live(&self, cookie: &str) -> bool {
        self.sessions.is_live(cookie)
    }

    /// Ends the session for `cookie`; an unknown cookie is ignored.
    pub fn logout(&self, cookie: &str) {
        self.sessions.remove(cookie);
    }

    /// The principal for a bearer token; fast (one SHA-256 and a map lookup), except about
    /// once a day per panel token, when its last use is written to the file.
    pub fn verify_token(&self, secret: &str) -> Option<Principal> {
        let verified = read(&self.tokens).verify(secret, time::OffsetDateTime::now_utc())?;
        if verified.record_use
            && let PrincipalKind::Token { id } = &verified.principal.kind
            && let Err(error) = write(&self.tokens).record_use(id)
        {
            // The token stays valid; only its expiry may come up to a day early after a restart.
            tracing::warn!(%error, "could not record the last use of a panel token");
        }
        Some(verified.principal)
    }

    /// Every user, sorted by username.
    pub fn list_users(&self) -> Vec<UserInfo> {
        read(&self.users).list()
    }

    /// The role of `username`, `None` if there is no such user.
    pub fn user_role(&self, username: &str) -> Option<Role> {
        read(&self.users).role(username)
    }

    /// Adds a user after checking the username rule and the password policy; fails with
    /// [`AccountsError::UserExists`] if the name is taken.
    /// Slow (hashes the password): call on a blocking thread.
    pub fn create_user(
        &self,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<UserInfo, AccountsError> {
        validate_username(username)?;
        check_password_policy(username, password)?;
        // A scraper has no person behind it to type a password; and a session would give it
        // nothing (it may not even look at its own session).
        if role == Role::Metrics {
            return Err(AccountsError::RoleNotForUsers { role });
        }
        // Checked before hashing to answer quickly, and again on insert (a race is possible).
        if read(&self.users).role(username).is_some() {
            return Err(AccountsError::UserExists {
                username: username.to_owned(),
            });
        }
        let password_hash = hash_password(password)?;
        let created = write(&self.users).insert(username, role, password_hash)?;
        tracing::info!(username, %role, "user created");
        Ok(created)
    }

    /// Deletes a user and ends their sessions. The last admin cannot be deleted.
    pub fn delete_user(&self, username: &str) -> Result<(), AccountsError> {
        let mut users = write(&self.users);
        users.remove(username)?;
        self.sessions.remove_user(username);
        drop(users);
        tracing::info!(username, "user deleted");
        Ok(())
    }

    /// Sets a new password and ends the user's sessions (whoever knew the old password is out).
    /// Slow (hashes the password): call on a blocking thread.
    pub fn set_password(&self, username: &str, password: &str) -> Result<(), AccountsError> {
        if read(&self.users).role(username).is_none() {
            return Err(AccountsError::UserNotFound {
                username: super::error::shorten(username),
            });
        }
        check_password_policy(username, password)?;
        let password_hash = hash_password(password)?;
        let mut users = write(&self.users);
        users.set_password_hash(username, password_hash)?;
        self.sessions.remove_user(username);
        drop(users);
        tracing::info!(username, "password changed; the user's sessions ended");
        Ok(())
    }

    /// Every API token, oldest first (never the secrets).
    pub fn list_tokens(&self) -> Vec<TokenInfo> {
        read(&self.tokens).list()
    }

    /// Makes an API token; the returned secret is shown once and never stored.
    pub fn create_token(
        &self,
        name: &str,
        role: Role,
        created_by: &str,
    ) -> Result<(TokenInfo, Secret), AccountsError> {
        let (info, secret) = write(&self.tokens).create(name, role, created_by)?;
        tracing::info!(id = %info.id, name = %info.name, role = %info.role, created_by, "API token created");
        Ok((info, secret))
    }

    /// Deletes token `id`; it stops working at once. [`AccountsError::TokenNotFound`] if unknown.
    pub fn revoke_token(&self, id: &str) -> Result<(), AccountsError> {
        write(&self.tokens).revoke(id)?;
        tracing::info!(id, "API token revoked");
        Ok(())
    }

    /// A touch panel asks to be paired; the code appears on the room display only.
    pub fn request_pairing(
        &self,
        panel_name: &str,
        source: IpAddr,
    ) -> Result<PairingRequest, AccountsError> {
        if !self.is_claimed() {
            return Err(AccountsError::NotClaimed);
        }
        self.pairing.request(panel_name, source)
    }

    /// Exchanges the code from the room display for a `room-control` token named after the
    /// panel. Wrong codes count towards the lockout of `source`.
    pub fn complete_pairing(
        &self,
        request_id: &str,
        code: &str,
        source: IpAddr,
    ) -> Result<(TokenInfo, Secret), AccountsError> {
        let key = LockoutKey::pairing(source);
        self.begin_attempt(&key)?;
        let panel = self.pairing.complete(request_id, code)?;
        self.lockout.record_success(&key);
        self.create_token(
            &format!("panel {panel}"),
            Role::RoomControl,
            PAIRING_CREATOR,
        )
    }

    /// Ends pairing request `id` if it has expired (a timer calls this after its lifetime).
    pub fn expire_pairing(&self, request_id: &str) {
        self.pairing.expire(request_id);
    }

    /// The pairing code to show on the room display while a request is pending.
    pub fn pairing_display_code(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        self.pairing.display_code()
    }

    fn begin_attempt(&self, key: &LockoutKey) -> Result<(), AccountsError> {
        self.lockout
            .begin_attempt(key)
            .map_err(|retry_after| AccountsError::LockedOut { retry_after })
    }
}

fn source_threshold(per_username: u32) -> u32 {
    per_username.max(1).saturating_mul(SOURCE_THRESHOLD_FACTOR)
}
