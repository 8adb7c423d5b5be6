//! Pairing a touch panel: a panel asks (public, rate-limited), the room display shows a short
//! code, and whoever types that code on the panel gets an API token with the `room-control` role
//! only. The code is never in an API response, the status or the logs: it reaches the display
//! through a watch channel the media engine reads, and `<state>/pairing-code` (mode 0600) for
//! whoever has the device's console, like the claim code.
//!
//! One request is pending at a time: a new one replaces the previous (and its code). A request
//! dies after [`PAIRING_TTL`] or [`MAX_CODE_ATTEMPTS`] wrong codes; wrong codes also count
//! towards the accounts lockout of their source address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use tokio::sync::watch;

use super::clock::Clock;
use super::error::AccountsError;
use super::secret::Secret;
use crate::fsutil::write_atomic;
use crate::random::{code, token_hex};

pub const PAIRING_CODE_FILE: &str = "pairing-code";
/// How long a code stays valid: long enough to walk from the display to the panel.
pub const PAIRING_TTL: Duration = Duration::from_secs(300);
/// Wrong codes before a request dies and the panel has to ask again.
pub const MAX_CODE_ATTEMPTS: u32 = 5;
/// One source address may ask this often; stops a stranger from keeping the display busy.
pub const REQUEST_INTERVAL: Duration = Duration::from_secs(10);
/// Digits of the code: 10^6 codes against 5 tries per request and a lockout per address.
const CODE_DIGITS: usize = 6;
/// Longest panel name kept (it names the token).
const MAX_NAME_CHARS: usize = 48;
/// Source addresses remembered for the request interval at most; older entries are pruned.
const MAX_SOURCES: usize = 10_000;

#[derive(Debug)]
struct Pending {
    id: String,
    name: String,
    code: Secret,
    created: Instant,
    wrong: u32,
}

/// What a panel learns when it asks: never the code.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PairingRequest {
    pub request_id: String,
    pub expires_in_seconds: u64,
}

#[derive(Debug)]
pub struct Pairing {
    clock: Arc<dyn Clock>,
    code_file: PathBuf,
    pending: Mutex<Option<Pending>>,
    last_request: Mutex<HashMap<IpAddr, Instant>>,
    display: watch::Sender<Option<String>>,
}

impl Pairing {
    pub fn new(state_dir: &std::path::Path, clock: Arc<dyn Clock>) -> Self {
        let code_file = state_dir.join(PAIRING_CODE_FILE);
        // A code from before a restart is void: its request is gone.
        let _ = std::fs::remove_file(&code_file);
        Pairing {
            clock,
            code_file,
            pending: Mutex::new(None),
            last_request: Mutex::new(HashMap::new()),
            display: watch::channel(None).0,
        }
    }

    /// The code to show on the room display, `None` when no request is pending.
    pub fn display_code(&self) -> watch::Receiver<Option<String>> {
        self.display.subscribe()
    }

    /// Starts a request for the panel `name` from `source`; replaces any pending request.
    pub fn request(&self, name: &str, source: IpAddr) -> Result<PairingRequest, AccountsError> {
        // Counted before trimming, as the contract's maxLength counts: a longer name is refused,
        // not cut.
        let too_long = name.chars().count() > MAX_NAME_CHARS;
        let name = name.trim();
        if name.is_empty() || too_long || name.chars().any(char::is_control) {
            return Err(AccountsError::InvalidPanelName);
        }
        let now = self.clock.now();
        {
            let mut last = lock(&self.last_request);
            if let Some(previous) = last.get(&source) {
                let since = now.saturating_duration_since(*previous);
                if since < REQUEST_INTERVAL {
                    return Err(AccountsError::LockedOut {
                        retry_after: REQUEST_INTERVAL - since,
                    });
                }
            }
            if last.len() >= MAX_SOURCES {
                last.retain(|_, t| now.saturating_duration_since(*t) < REQUEST_INTERVAL);
            }
            last.insert(source, now);
        }
        let pending = Pending {
            id: token_hex(16),
            name: name.chars().take(MAX_NAME_CHARS).collect(),
            code: Secret::new(code(CODE_DIGITS, b"0123456789")),
            created: now,
            wrong: 0,
        };
        write_atomic(
            &self.code_file,
            format!("{}\n", pending.code.expose()).as_bytes(),
            0o600,
        )?;
        let answer = PairingRequest {
            request_id: pending.id.clone(),
            expires_in_seconds: PAIRING_TTL.as_secs(),
        };
        tracing::info!(panel = %pending.name, %source, "touch panel pairing requested; code on the room display");
        self.display
            .send_replace(Some(pending.code.expose().to_owned()));
        *lock(&self.pending) = Some(pending);
        Ok(answer)
    }

    /// Checks `typed` against the pending request `id`. On success the request is used up and
    /// the panel's name is returned (the caller makes the token).
    pub fn complete(&self, id: &str, typed: &str) -> Result<String, AccountsError> {
        let mut pending = lock(&self.pending);
        let current = match pending.as_mut() {
            Some(p) if p.id.as_bytes().ct_eq(id.as_bytes()).into() => p,
            _ => return Err(AccountsError::NoPairingRequest),
        };
        if self.clock.now().saturating_duration_since(current.created) >= PAIRING_TTL {
            *pending = None;
            self.clear_display();
            return Err(AccountsError::NoPairingRequest);
        }
        let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
        if !bool::from(typed.as_bytes().ct_eq(current.code.expose().as_bytes())) {
            current.wrong += 1;
            if current.wrong >= MAX_CODE_ATTEMPTS {
                *pending = None;
                self.clear_display();
                return Err(AccountsError::WrongPairingCode { attempts_left: 0 });
            }
            return Err(AccountsError::WrongPairingCode {
                attempts_left: MAX_CODE_ATTEMPTS - current.wrong,
            });
        }
        let name = current.name.clone();
        *pending = None;
        self.clear_display();
        Ok(name)
    }

    /// Ends request `id` if it is still pending and has expired (called by a timer).
    pub fn expire(&self, id: &str) {
        let mut pending = lock(&self.pending);
        let expired = pending.as_ref().is_some_and(|p| {
            p.id == id && self.clock.now().saturating_duration_since(p.created) >= PAIRING_TTL
        });
        if expired {
            *pending = None;
            self.clear_display();
        }
    }

    fn clear_display(&self) {
        self.display.send_replace(None);
        if let Err(e) = std::fs::remove_file(&self.code_file)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("could not delete {}: {e}", self.code_file.display());
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::accounts::ManualClock;

    fn setup() -> (tempfile::TempDir, Arc<ManualClock>, Pairing) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new());
        let pairing = Pairing::new(dir.path(), clock.clone());
        (dir, clock, pairing)
    }

    const PANEL: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));

    #[test]
    fn the_code_reaches_the_display_and_the_console_file_only() {
        let (dir, _clock, pairing) = setup();
        let display = pairing.display_code();
        let request = pairing.request("Table", PANEL).unwrap();
        let code = display.borrow().clone().expect("a code on the display");
        assert_eq!(code.len(), CODE_DIGITS);
        let file = std::fs::read_to_string(dir.path().join(PAIRING_CODE_FILE)).unwrap();
        assert_eq!(file.trim(), code);
        // What the panel is told does not contain the code.
        assert!(!serde_json::to_string(&request).unwrap().contains(&code));

        assert_eq!(
            pairing.complete(&request.request_id, &code).unwrap(),
            "Table"
        );
        assert!(
            display.borrow().is_none(),
            "the display forgets a used code"
        );
        assert!(!dir.path().join(PAIRING_CODE_FILE).exists());
        assert!(matches!(
            pairing.complete(&request.request_id, &code),
            Err(AccountsError::NoPairingRequest)
        ));
    }

    #[test]
    fn wrong_codes_end_the_request() {
        let (_dir, _clock, pairing) = setup();
        let request = pairing.request("Table", PANEL).unwrap();
        let code = pairing.display_code().borrow().clone().unwrap();
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for left in (0..MAX_CODE_ATTEMPTS).rev() {
            match pairing.complete(&request.request_id, wrong) {
                Err(AccountsError::WrongPairingCode { attempts_left }) => {
                    assert_eq!(attempts_left, left)
                }
                other => panic!("expected a wrong code, got {other:?}"),
            }
        }
        assert!(matches!(
            pairing.complete(&request.request_id, &code),
            Err(AccountsError::NoPairingRequest)
        ));
    }

    #[test]
    fn requests_are_rate_limited_per_address_and_expire() {
        let (_dir, clock, pairing) = setup();
        let first = pairing.request("Table", PANEL).unwrap();
        assert!(matches!(
            pairing.request("Table", PANEL),
            Err(AccountsError::LockedOut { .. })
        ));
        clock.advance(REQUEST_INTERVAL);
        let second = pairing.request("Table", PANEL).unwrap();
        // The newer request replaced the first.
        let code = pairing.display_code().borrow().clone().unwrap();
        assert!(matches!(
            pairing.complete(&first.request_id, &code),
            Err(AccountsError::NoPairingRequest)
        ));
        clock.advance(PAIRING_TTL);
        pairing.expire(&second.request_id);
        assert!(pairing.display_code().borrow().is_none());
        assert!(matches!(
            pairing.complete(&second.request_id, &code),
            Err(AccountsError::NoPairingRequest)
        ));
        assert!(matches!(
            pairing.request(" ", PANEL),
            Err(AccountsError::InvalidPanelName)
        ));
        assert!(matches!(
            pairing.request(&"x".repeat(MAX_NAME_CHARS + 1), PANEL),
            Err(AccountsError::InvalidPanelName)
        ));
    }
}
