//! Browser sessions, in memory only (a restart logs everyone out). The cookie value is a 256-bit
//! random secret of which only the SHA-256 is kept; each session also has its own CSRF token.
//!
//! A session ends when it has been idle too long, when it reaches [`MAX_SESSION_LIFETIME`]
//! however busy it is (a stolen cookie is not good forever), or when its user opens more than
//! [`MAX_SESSIONS_PER_USER`] sessions (the least recently used one goes). Only requests the user
//! makes count as use: an open WebSocket re-checks its session with [`SessionStore::is_live`],
//! which does not refresh it, so a forgotten browser tab does not keep a session alive.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

use super::clock::Clock;
use super::principal::{Principal, PrincipalKind};
use roomd_base::sync::lock;
use roomd_model::Role;
use roomd_model::{Secret, random_base64url, sha256};

/// Upper bound on concurrent sessions; past it the least recently used one ends.
const MAX_SESSIONS: usize = 1000;
/// A session ends this long after its login, used or not: a working day and then some.
pub(super) const MAX_SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// Sessions one user may hold at once (browsers, tabs after a logout-less close, devices);
/// a new login past it ends that user's least recently used session.
pub(super) const MAX_SESSIONS_PER_USER: usize = 10;
/// Longer input cannot be one of our cookies; refused before hashing.
const MAX_COOKIE_LEN: usize = 128;

/// A live session as the API sees it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The logged-in user; `kind` is [`PrincipalKind::Session`].
    pub principal: Principal,
    csrf_token: Secret,
    /// The session ends after this long without a request.
    pub idle_timeout: Duration,
}

impl SessionInfo {
    /// The token the browser must echo in `X-CSRF-Token` on state-changing requests.
    pub fn csrf_token(&self) -> &str {
        self.csrf_token.expose()
    }

    /// Whether `header` is this session's CSRF token (constant-time; empty never matches).
    pub fn csrf_matches(&self, header: &str) -> bool {
        self.csrf_token
            .expose()
            .as_bytes()
            .ct_eq(header.trim().as_bytes())
            .into()
    }
}

/// The result of a successful login. `cookie` is the value for the session cookie and
/// `csrf_token` goes into the response body; both are shown once and kept only as hashes or in
/// memory.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Value of the session cookie; only its hash is kept.
    pub cookie: Secret,
    /// The user who logged in; `kind` is [`PrincipalKind::Session`].
    pub principal: Principal,
    /// To echo in `X-CSRF-Token` on state-changing requests.
    pub csrf_token: Secret,
    /// The session ends after this long without a request.
    pub idle_timeout: Duration,
}

struct Session {
    username: String,
    role: Role,
    csrf_token: Secret,
    created: Instant,
    last_seen: Instant,
}

impl Session {
    fn is_live(&self, now: Instant, idle_timeout: Duration) -> bool {
        now.saturating_duration_since(self.last_seen) < idle_timeout
            && now.saturating_duration_since(self.created) < MAX_SESSION_LIFETIME
    }
}

struct Table {
    idle_timeout: Duration,
    by_cookie_hash: HashMap<[u8; 32], Session>,
}

pub(super) struct SessionStore {
    clock: Arc<dyn Clock>,
    table: Mutex<Table>,
}

impl std::fmt::Debug for SessionStore {
    /// Nothing of the table: it is keyed by cookie hashes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore").finish_non_exhaustive()
    }
}

impl SessionStore {
    pub(super) fn new(idle_timeout: Duration, clock: Arc<dyn Clock>) -> Self {
        SessionStore {
            clock,
            table: Mutex::new(Table {
                idle_timeout,
                by_cookie_hash: HashMap::new(),
            }),
        }
    }

    /// Changes the idle timeout; it applies to existing sessions too.
    pub(super) fn set_idle_timeout(&self, idle_timeout: Duration) {
        self.lock().idle_timeout = idle_timeout;
    }

    pub(super) fn create(&self, username: &str, role: Role) -> NewSession {
        let cookie = random_base64url(32);
        let csrf_token = Secret::new(random_base64url(32));
        let now = self.clock.now();
        let mut table = self.lock();
        table.end_excess_sessions_of(username, now);
        if table.by_cookie_hash.len() >= MAX_SESSIONS {
            table.make_room(now);
        }
        table.by_cookie_hash.insert(
            sha256(&cookie),
            Session {
                username: username.to_owned(),
                role,
                csrf_token: csrf_token.clone(),
                created: now,
                last_seen: now,
            },
        );
        NewSession {
            cookie: Secret::new(cookie),
            principal: session_principal(username, role),
            csrf_token,
            idle_timeout: table.idle_timeout,
        }
    }

    /// The session for `cookie`, if it exists, has not been idle too long and is younger than
    /// [`MAX_SESSION_LIFETIME`]; refreshes its last use. An expired session is removed.
    pub(super) fn get(&self, cookie: &str) -> Option<SessionInfo> {
        if cookie.len() > MAX_COOKIE_LEN {
            return None;
        }
        let key = sha256(cookie);
        let now = self.clock.now();
        let mut table = self.lock();
        let idle_timeout = table.idle_timeout;
        let session = table.by_cookie_hash.get_mut(&key)?;
        if !session.is_live(now, idle_timeout) {
            table.by_cookie_hash.remove(&key);
            return None;
        }
        session.last_seen = now;
        Some(SessionInfo {
            principal: session_principal(&session.username, session.role),
            csrf_token: session.csrf_token.clone(),
            idle_timeout,
        })
    }

    /// Whether the session for `cookie` is still live, without counting this as use (for an
    /// open WebSocket's periodic re-check).
    pub(super) fn is_live(&self, cookie: &str) -> bool {
        if cookie.len() > MAX_COOKIE_LEN {
            return false;
        }
        let now = self.clock.now();
        let table = self.lock();
        table
            .by_cookie_hash
            .get(&sha256(cookie))
            .is_some_and(|session| session.is_live(now, table.idle_timeout))
    }

    pub(super) fn remove(&self, cookie: &str) {
        if cookie.len() <= MAX_COOKIE_LEN {
            self.lock().by_cookie_hash.remove(&sha256(cookie));
        }
    }

    /// Ends every session of `username` (user deleted or password changed).
    pub(super) fn remove_user(&self, username: &str) {
        self.lock()
            .by_cookie_hash
            .retain(|_, session| session.username != username);
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // Every update is a single map operation, so a poisoned table is still consistent.
        lock(&self.table)
    }
}

fn session_principal(username: &str, role: Role) -> Principal {
    Principal {
        name: username.to_owned(),
        role,
        kind: PrincipalKind::Session,
    }
}

impl Table {
    /// Makes room for one more session of `username`: drops its expired sessions, then its
    /// least recently used ones until fewer than [`MAX_SESSIONS_PER_USER`] remain.
    fn end_excess_sessions_of(&mut self, username: &str, now: Instant) {
        let idle_timeout = self.idle_timeout;
        self.by_cookie_hash
            .retain(|_, s| s.username != username || s.is_live(now, idle_timeout));
        loop {
            let mine = self
                .by_cookie_hash
                .iter()
                .filter(|(_, s)| s.username == username);
            if mine.clone().count() < MAX_SESSIONS_PER_USER {
                return;
            }
            let Some(key) = mine.min_by_key(|(_, s)| s.last_seen).map(|(key, _)| *key) else {
                return;
            };
            self.by_cookie_hash.remove(&key);
        }
    }

    fn make_room(&mut self, now: Instant) {
        let idle_timeout = self.idle_timeout;
        self.by_cookie_hash
            .retain(|_, s| s.is_live(now, idle_timeout));
        if self.by_cookie_hash.len() < MAX_SESSIONS {
            return;
        }
        let least_recent = self
            .by_cookie_hash
            .iter()
            .min_by_key(|(_, s)| s.last_seen)
            .map(|(key, _)| *key);
        if let Some(key) = least_recent {
            self.by_cookie_hash.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::clock::ManualClock;

    fn setup() -> (Arc<ManualClock>, SessionStore) {
        let clock = Arc::new(ManualClock::new());
        let store = SessionStore::new(Duration::from_secs(600), clock.clone());
        (clock, store)
    }

    #[test]
    fn expires_after_idle_time_and_use_refreshes() {
        let (clock, store) = setup();
        let new = store.create("alice", Role::User);
        clock.advance(Duration::from_secs(599));
        assert!(store.get(new.cookie.expose()).is_some());
        clock.advance(Duration::from_secs(599));
        let info = store.get(new.cookie.expose()).unwrap();
        assert_eq!(info.principal, new.principal);
        assert_eq!(info.principal.name, "alice");
        assert_eq!(info.principal.kind, PrincipalKind::Session);
        clock.advance(Duration::from_secs(600));
        assert!(store.get(new.cookie.expose()).is_none());
        assert!(
            store.lock().by_cookie_hash.is_empty(),
            "expired session removed"
        );
    }

    #[test]
    fn shorter_idle_timeout_applies_to_existing_sessions() {
        let (clock, store) = setup();
        let new = store.create("alice", Role::User);
        store.set_idle_timeout(Duration::from_secs(60));
        clock.advance(Duration::from_secs(61));
        assert!(store.get(new.cookie.expose()).is_none());
    }

    #[test]
    fn logout_and_user_removal_end_sessions() {
        let (_clock, store) = setup();
        let a1 = store.create("alice", Role::Admin);
        let a2 = store.create("alice", Role::Admin);
        let b = store.create("bob", Role::User);
        store.remove(a1.cookie.expose());
        assert!(store.get(a1.cookie.expose()).is_none());
        assert!(store.get(a2.cookie.expose()).is_some());
        store.remove_user("alice");
        assert!(store.get(a2.cookie.expose()).is_none());
        assert!(store.get(b.cookie.expose()).is_some());
        assert!(store.get("not a cookie").is_none());
        assert!(store.get(&"x".repeat(10_000)).is_none());
    }

    #[test]
    fn csrf_token_is_separate_and_checked_exactly() {
        let (_clock, store) = setup();
        let new = store.create("alice", Role::User);
        let info = store.get(new.cookie.expose()).unwrap();
        assert_ne!(info.csrf_token(), new.cookie.expose());
        assert!(info.csrf_matches(new.csrf_token.expose()));
        assert!(!info.csrf_matches(""));
        assert!(!info.csrf_matches(new.cookie.expose()));
        assert!(!info.csrf_matches(&info.csrf_token()[1..]));
        let other = store.create("alice", Role::User);
        assert!(!info.csrf_matches(other.csrf_token.expose()));
        assert!(!format!("{new:?}").contains(new.cookie.expose()));
        assert!(!format!("{info:?}").contains(info.csrf_token()));
    }

    #[test]
    fn a_busy_session_still_ends_at_its_absolute_lifetime() {
        let (clock, store) = setup();
        let new = store.create("alice", Role::User);
        let step = Duration::from_secs(300);
        let mut elapsed = Duration::ZERO;
        while elapsed + step < MAX_SESSION_LIFETIME {
            clock.advance(step);
            elapsed += step;
            assert!(
                store.get(new.cookie.expose()).is_some(),
                "alive at {elapsed:?}"
            );
        }
        clock.advance(MAX_SESSION_LIFETIME - elapsed);
        assert!(store.get(new.cookie.expose()).is_none());
        assert!(store.lock().by_cookie_hash.is_empty());
    }

    #[test]
    fn checking_liveness_does_not_refresh_the_idle_timer() {
        let (clock, store) = setup();
        let new = store.create("alice", Role::User);
        for _ in 0..9 {
            clock.advance(Duration::from_secs(60));
            assert!(store.is_live(new.cookie.expose()));
        }
        clock.advance(Duration::from_secs(60));
        assert!(!store.is_live(new.cookie.expose()), "idle for 600 s");
        assert!(store.get(new.cookie.expose()).is_none());
        assert!(!store.is_live(&"x".repeat(10_000)));
    }

    #[test]
    fn each_user_holds_a_bounded_number_of_sessions() {
        let (clock, store) = setup();
        let mut alice: Vec<NewSession> = (0..MAX_SESSIONS_PER_USER)
            .map(|_| {
                clock.advance(Duration::from_millis(1));
                store.create("alice", Role::User)
            })
            .collect();
        let bob = store.create("bob", Role::User);
        // Alice's first session was used last, so the second is the least recently used.
        clock.advance(Duration::from_millis(1));
        assert!(store.get(alice[0].cookie.expose()).is_some());
        clock.advance(Duration::from_millis(1));
        alice.push(store.create("alice", Role::User));
        assert!(store.get(alice[1].cookie.expose()).is_none(), "LRU ended");
        for session in alice
            .iter()
            .filter(|s| s.cookie.expose() != alice[1].cookie.expose())
        {
            assert!(store.get(session.cookie.expose()).is_some());
        }
        assert!(
            store.get(bob.cookie.expose()).is_some(),
            "others keep theirs"
        );
    }

    #[test]
    fn number_of_sessions_is_bounded() {
        let (clock, store) = setup();
        let first = store.create("alice", Role::User);
        for i in 0..MAX_SESSIONS {
            clock.advance(Duration::from_millis(1));
            store.create(&format!("bob{i}"), Role::User);
        }
        assert_eq!(store.lock().by_cookie_hash.len(), MAX_SESSIONS);
        assert!(store.get(first.cookie.expose()).is_none(), "oldest evicted");
    }
}
