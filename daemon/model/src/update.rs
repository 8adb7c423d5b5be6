//! Firmware updates as data: the `update` branch of the status tree, and how image versions
//! compare. The update worker (`roomd-update`) fills the status; the room core publishes it.

use std::cmp::Ordering;

use serde::Serialize;

/// `status.update`: whether this room can be updated, where an update stands, and what the
/// boot loader did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateStatus {
    /// Whether updates can be installed at all: roomd runs from a firmware image and RAUC answers.
    pub available: bool,
    /// Why updates are not available; empty when they are.
    pub unavailable_reason: String,
    /// `IMAGE_VERSION` of the running firmware image; empty when not running from one.
    pub image_version: String,
    /// The slot RAUC says the system booted from (`A`, `B`, …); empty when unknown.
    pub booted_slot: String,
    /// The lowest version this device installs: the higher of the running image's
    /// `ROOMD_SECURITY_FLOOR` and the floor it has seen before; empty when none.
    pub security_floor: String,
    /// Where the current (or last) update stands.
    pub state: UpdateState,
    /// Progress of the current step (download or install).
    pub progress: UpdateProgress,
    /// Version of the bundle being installed, or installed and waiting for a reboot.
    pub version: String,
    /// Whether an installed update waits for `update.reboot`.
    pub needs_reboot: bool,
    /// Why the last update failed (state `failed`); empty otherwise.
    pub error: String,
    /// Whether roomd marked the booted slot good in this boot (after its health check).
    pub marked_good: bool,
    /// Set when the boot loader fell back: the newest installed slot did not become good.
    pub rolled_back: Option<RolledBack>,
}

/// `status.update.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateState {
    /// Nothing is being installed.
    Idle,
    /// A bundle is being received (upload) or downloaded (URL).
    Downloading,
    /// RAUC installs the bundle into the other slot.
    Installing,
    /// The bundle is installed; the new version runs after a reboot.
    Installed,
    /// The last update failed; `error` says why. The running slot is untouched.
    Failed,
}

impl UpdateState {
    /// The state as written in the status tree.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateState::Idle => "idle",
            UpdateState::Downloading => "downloading",
            UpdateState::Installing => "installing",
            UpdateState::Installed => "installed",
            UpdateState::Failed => "failed",
        }
    }
}

/// `status.update.progress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct UpdateProgress {
    /// Bytes received so far (downloading).
    pub bytes: u64,
    /// Size of the whole bundle, when the sender said it.
    pub total_bytes: Option<u64>,
    /// 0..=100, when known.
    pub percent: Option<u8>,
    /// RAUC's description of its current step (installing).
    pub message: String,
}

/// `status.update.rolled_back`: the newest installed version did not boot to health, and the
/// boot loader went back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolledBack {
    /// The version that was installed and failed.
    pub from: String,
    /// The version running now.
    pub to: String,
}

impl UpdateStatus {
    /// Before roomd has looked at the image and RAUC.
    pub fn unknown() -> UpdateStatus {
        UpdateStatus {
            available: false,
            unavailable_reason: "not checked yet".to_owned(),
            image_version: String::new(),
            booted_slot: String::new(),
            security_floor: String::new(),
            state: UpdateState::Idle,
            progress: UpdateProgress::default(),
            version: String::new(),
            needs_reboot: false,
            error: String::new(),
            marked_good: false,
            rolled_back: None,
        }
    }
}

/// Compares two versions the way `dpkg --compare-versions` does: `[epoch:]upstream[-revision]`,
/// each part compared by alternating non-digit runs (letters before other characters, `~`
/// before everything, even the end) and numeric runs.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split_version(a);
    let (eb, ub, rb) = split_version(b);
    ea.cmp(&eb)
        .then_with(|| compare_part(ua, ub))
        .then_with(|| compare_part(ra, rb))
}

/// Epoch, upstream version and revision.
fn split_version(v: &str) -> (u64, &str, &str) {
    let v = v.trim();
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit()) => {
            (e.parse().unwrap_or(u64::MAX), rest)
        }
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((upstream, revision)) => (epoch, upstream, revision),
        None => (epoch, rest, ""),
    }
}

/// dpkg's order of one character of a non-digit run; the end of the run counts as 0.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // Non-digit runs, character by character.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ca = a.get(i).copied().filter(|c| !c.is_ascii_digit());
            let cb = b.get(j).copied().filter(|c| !c.is_ascii_digit());
            let (oa, ob) = (order(ca), order(cb));
            if oa != ob {
                return oa.cmp(&ob);
            }
            if ca.is_some() {
                i += 1;
            }
            if cb.is_some() {
                j += 1;
            }
        }
        // Numeric runs, without leading zeros, by length then digits (no overflow).
        let start_a = i;
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        let start_b = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let na = trim_zeros(&a[start_a..i]);
        let nb = trim_zeros(&b[start_b..j]);
        let by_number = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
        if by_number != Ordering::Equal {
            return by_number;
        }
    }
    Ordering::Equal
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let first = digits
        .iter()
        .position(|&c| c != b'0')
        .unwrap_or(digits.len());
    &digits[first..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    /// Each pair as `dpkg --compare-versions` orders it (checked against dpkg 1.21).
    #[test]
    fn versions_compare_like_dpkg() {
        for (a, b, expected) in [
            ("1.0", "1.0", Equal),
            ("1.0", "1.1", Less),
            ("1.10", "1.9", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0", "1.0a", Less),
            ("1.0a", "1.0+", Less),
            ("1.0-1", "1.0-2", Less),
            ("1.0-10", "1.0-9", Greater),
            ("1:0.1", "2.0", Greater),
            ("0:2.0", "2.0", Equal),
            ("2.0", "2.00", Equal),
            ("2.01", "2.1", Equal),
            ("2026.12.1", "2026.12", Greater),
            ("1.2.3", "1.2.3.0", Less),
            ("99999999999999999999999", "1", Greater),
            ("1.0-rc1", "1.0", Greater),
        ] {
            assert_eq!(compare_versions(a, b), expected, "{a} vs {b}");
            assert_eq!(compare_versions(b, a), expected.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn the_status_tree_names_the_state_in_kebab_case() {
        let mut status = UpdateStatus::unknown();
        status.state = UpdateState::Installed;
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["state"], "installed");
        assert_eq!(json["rolled_back"], serde_json::Value::Null);
        assert_eq!(UpdateState::Failed.as_str(), "failed");
    }
}
