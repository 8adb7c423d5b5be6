//! Pairing a touch panel: a panel asks (public, rate-limited), the room display shows a short
//! code, and whoever types that code on the panel gets an API token with the `room-control` role
//! only. The code is never in an API response, the status or the logs: it reaches the display
//! through a watch channel the media engine reads, and `<state>/pairing-code` (mode 0600) for
//! whoever has the device's console, like the claim code.
//!
//! One request is pending at a time: a new one replaces the previous (and its code). A request
//! dies after [`PAIRING_TTL`] or [`MAX_CODE_ATTEMPTS`] wrong codes; wrong codes also count
//! towards the accounts lockout of their source address.
//!
//! Per-address limits do not stop a guesser with many addresses, so requests and wrong codes
//! also come out of room-wide budgets. What a night of guessing can achieve, from any number
//! of addresses: the code has 8 digits, 10^8 values, drawn afresh for every request. Wrong
//! codes room-wide are [`WRONG_CODE_BURST`] = 10 at once, then one per
//! [`WRONG_CODE_REFILL`] = 6 minutes: in 12 hours at most 10 + 12 × 60 / 6 = 130 guesses, each
//! right with probability 10^-8, so the chance that any succeeds is at most
//! 130 / 10^8 ≈ 1.3 × 10^-6. The price: a guesser can use up the budget and delay a real panel
//! by minutes (`Retry-After` says how long); an admin can always make a `room-control` token
//! instead. Requests room-wide are [`REQUEST_BURST`] at once, then one per
//! [`REQUEST_REFILL`], so nobody keeps the room display busy with codes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use tokio::sync::watch;

use super::budget::Budget;
use super::clock::Clock;
use super::error::AccountsError;
use roomd_base::fsutil::write_atomic;
use roomd_base::net_source::source_group;
use roomd_base::random::{code, token_hex};
use roomd_base::sync::lock;
use roomd_model::Secret;

/// The pending pairing code in the state directory (mode 0600), for whoever has the console.
pub const PAIRING_CODE_FILE: &str = "pairing-code";
/// How long a code stays valid: long enough to walk from the display to the panel.
pub const PAIRING_TTL: Duration = Duration::from_secs(300);
/// Wrong codes before a request dies and the panel has to ask again.
pub const MAX_CODE_ATTEMPTS: u32 = 5;
/// One source address may ask this often; stops a stranger from keeping the display busy.
pub(super) const REQUEST_INTERVAL: Duration = Duration::from_secs(10);
/// Digits of the code: 10^8 codes against the room-wide wrong-code budget (see above).
const CODE_DIGITS: usize = 8;
/// Pairing requests room-wide: this many at once …
pub(super) const REQUEST_BURST: u32 = 3;
/// … then one more per this long.
pub(super) const REQUEST_REFILL: Duration = Duration::from_secs(120);
/// Wrong codes room-wide, from all addresses together: this many at once …
pub(super) const WRONG_CODE_BURST: u32 = 10;
/// … then one more per this long.
pub(super) const WRONG_CODE_REFILL: Duration = Duration::from_secs(6 * 60);
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
    /// Identifies the request when the panel sends the code (32 hex digits).
    pub request_id: String,
    /// Seconds until the code is void ([`PAIRING_TTL`]).
    pub expires_in_seconds: u64,
}

#[derive(Debug)]
pub(super) struct Pairing {
    clock: Arc<dyn Clock>,
    code_file: PathBuf,
    pending: Mutex<Option<Pending>>,
    last_request: Mutex<HashMap<IpAddr, Instant>>,
    requests: Budget,
    wrong_codes: Budget,
    display: watch::Sender<Option<String>>,
}

impl Pairing {
    pub(super) fn new(state_dir: &std::path::Path, clock: Arc<dyn Clock>) -> Self {
        let code_file = state_dir.join(PAIRING_CODE_FILE);
        // A code from before a restart is void: its request is gone.
        let _ = std::fs::remove_file(&code_file);
        Pairing {
            code_file,
            pending: Mutex::new(None),
            last_request: Mutex::new(HashMap::new()),
            requests: Budget::new(REQUEST_BURST, REQUEST_REFILL, clock.clone()),
            wrong_codes: Budget::new(WRONG_CODE_BURST, WRONG_CODE_REFILL, clock.clone()),
            clock,
            display: watch::channel(None).0,
        }
    }

    /// The code to show on the room display, `None` when no request is pending.
    pub(super) fn display_code(&self) -> watch::Receiver<Option<String>> {
        self.display.subscribe()
    }

    /// Starts a request for the panel `name` from `source`; replaces any pending request.
    pub(super) fn request(
        &self,
        name: &str,
        source: IpAddr,
    ) -> Result<PairingRequest, AccountsError> {
        // Counted before trimming, as the contract's maxLength counts: a longer name is refused,
        // not cut.
        let too_long = name.chars().count() > MAX_NAME_CHARS;
        let name = name.trim();
        if name.is_empty() || too_long || name.chars().any(char::is_control) {
            return Err(AccountsError::InvalidPanelName);
        }
        let now = self.clock.now();
        let source = source_group(source);
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
            // After the per-address check, so one address asking too often does not use up
            // the room's budget.
            self.requests
                .spend()
                .map_err(|retry_after| AccountsError::PairingBusy { retry_after })?;
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
    pub(super) fn complete(&self, id: &str, typed: &str) -> Result<String, AccountsError> {
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
        // Every check spends from the wrong-code budget first (a right code gets it back), so
        // that once the budget is used up no code is checked at all, right or wrong.
        self.wrong_codes
            .spend()
            .map_err(|retry_after| AccountsError::PairingBusy { retry_after })?;
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
        self.wrong_codes.refund();
        let name = current.name.clone();
        *pending = None;
        self.clear_display();
        Ok(name)
    }

    /// Ends request `id` if it is still pending and has expired (called by a timer).
    pub(super) fn expire(&self, id: &str) {
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
        let wrong = if code == "00000000" {
            "11111111"
        } else {
            "00000000"
        };
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

    fn source(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, n))
    }

    #[test]
    fn requests_from_many_addresses_share_a_room_wide_budget() {
        let (_dir, clock, pairing) = setup();
        for n in 0..REQUEST_BURST {
            pairing.request("Table", source(n as u8)).unwrap();
        }
        let refused = pairing.request("Table", source(99));
        assert!(
            matches!(refused, Err(AccountsError::PairingBusy { retry_after }) if retry_after == REQUEST_REFILL),
            "{refused:?}"
        );
        clock.advance(REQUEST_REFILL);
        pairing.request("Table", source(99)).unwrap();
        // IPv6 addresses of one /64 are one address for the per-address interval.
        clock.advance(REQUEST_REFILL);
        pairing
            .request("Table", "2001:db8::1".parse().unwrap())
            .unwrap();
        assert!(matches!(
            pairing.request("Table", "2001:db8::2".parse().unwrap()),
            Err(AccountsError::LockedOut { .. })
        ));
    }

    /// A night of guessing from as many addresses as the guesser likes: every request gets a
    /// fresh code, and the wrong codes room-wide stay within the budget the module
    /// documentation computes the odds from.
    #[test]
    fn a_night_of_guessing_from_many_addresses_stays_within_the_wrong_code_budget() {
        let (_dir, clock, pairing) = setup();
        let night = Duration::from_secs(12 * 60 * 60);
        let step = Duration::from_secs(10);
        let (mut checked, mut refused, mut elapsed) = (0u32, 0u32, Duration::ZERO);
        let mut request = pairing.request("Evil", source(0)).unwrap();
        let mut n = 0u32;
        while elapsed < night {
            let code = pairing.display_code().borrow().clone().unwrap();
            let wrong = if code == "00000000" {
                "11111111"
            } else {
                "00000000"
            };
            match pairing.complete(&request.request_id, wrong) {
                Err(AccountsError::WrongPairingCode { .. }) => checked += 1,
                Err(AccountsError::PairingBusy { .. }) => refused += 1,
                Err(AccountsError::NoPairingRequest) => {}
                other => panic!("{other:?}"),
            }
            if checked % MAX_CODE_ATTEMPTS == 0 || pairing.display_code().borrow().is_none() {
                n += 1;
                if let Ok(next) = pairing.request("Evil", source((n % 250) as u8)) {
                    request = next;
                }
            }
            clock.advance(step);
            elapsed += step;
        }
        let allowed = WRONG_CODE_BURST + (night.as_secs() / WRONG_CODE_REFILL.as_secs()) as u32;
        assert!(
            checked <= allowed,
            "{checked} codes checked in a night (budget {allowed})"
        );
        assert!(
            checked >= allowed - 2,
            "the budget refills: only {checked} checked"
        );
        assert!(refused > 0);
        assert_eq!(allowed, 130, "the figure the module documentation uses");
        // And with the budget used up, even the right code is not checked.
        let code = pairing.display_code().borrow().clone();
        if let Some(code) = code {
            for _ in 0..WRONG_CODE_BURST {
                let _ = pairing.complete(&request.request_id, "nope");
            }
            assert!(matches!(
                pairing.complete(&request.request_id, &code),
                Err(AccountsError::PairingBusy { .. }) | Err(AccountsError::NoPairingRequest)
            ));
        }
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
