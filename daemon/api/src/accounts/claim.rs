//! The one-time claim code of an unclaimed device, kept in `<state>/claim-code` (mode 0600) so
//! that the code shown on the room display stays valid across restarts until someone claims the
//! device.

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use subtle::ConstantTimeEq;

use super::error::AccountsError;
use roomd_base::fsutil::write_atomic;
use roomd_base::random::{UNAMBIGUOUS_ALPHABET, code};
use roomd_model::Secret;

/// Characters in a claim code, drawn from [`UNAMBIGUOUS_ALPHABET`] (capitals and digits that
/// cannot be mistaken for one another).
pub const CLAIM_CODE_LEN: usize = 12;

/// Written into the state directory when the device is claimed: proof of the claim that does not
/// depend on users.json, so that losing that file cannot silently open claiming again.
pub(super) const CLAIMED_MARKER_FILE: &str = "claimed";

/// Target of the records that belong on the console and in the journal only: the API's
/// recent log leaves them out (see `logging::CONSOLE_ONLY_TARGET`).
const CONSOLE: &str = crate::logging::CONSOLE_ONLY_TARGET;

/// Tells whoever has the console (or the journal) the claim code. The one secret roomd logs on
/// purpose, and never where the API serves it.
pub(super) fn announce(code: &Secret) {
    tracing::warn!(
        target: CONSOLE,
        "this device is unclaimed; claim it with code {} (POST /api/v1/claim)",
        code.expose()
    );
}

/// Refuses to treat `state_dir` as unclaimed when it shows an earlier claim: the marker, a
/// users file (even one emptied) or API tokens. Called only when there are no users.
pub(super) fn refuse_if_claimed_before(
    state_dir: &Path,
    evidence_files: &[&str],
) -> Result<(), AccountsError> {
    let found: Vec<String> = std::iter::once(CLAIMED_MARKER_FILE)
        .chain(evidence_files.iter().copied())
        .map(|name| state_dir.join(name))
        .filter(|path| path.exists())
        .map(|path| path.display().to_string())
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    Err(AccountsError::ClaimedBefore {
        state_dir: state_dir.to_owned(),
        evidence: found.join(", "),
    })
}

/// Records that the device is claimed (atomically; an existing marker is kept).
pub(super) fn mark_claimed(state_dir: &Path) -> Result<(), AccountsError> {
    let path = state_dir.join(CLAIMED_MARKER_FILE);
    if path.exists() {
        return Ok(());
    }
    write_atomic(
        &path,
        b"This device has been claimed. roomd refuses to start unclaimed while this file exists.\n",
        0o600,
    )?;
    Ok(())
}

/// The code in `path` if it is a valid code readable by roomd only; otherwise a new code, written
/// to `path`. A file that is damaged or readable by others is replaced: it holds no data worth
/// keeping, and a code others could read must not stay valid.
pub(super) fn load_or_create(path: &Path) -> Result<Secret, AccountsError> {
    match read_existing(path) {
        Ok(Some(existing)) => return Ok(existing),
        Ok(None) => {}
        Err(problem) => tracing::warn!(
            path = %path.display(),
            "replacing the claim code file: {problem}"
        ),
    }
    let new = code(CLAIM_CODE_LEN, UNAMBIGUOUS_ALPHABET);
    write_atomic(path, format!("{new}\n").as_bytes(), 0o600)?;
    Ok(Secret::new(new))
}

/// `Ok(None)` if there is no file; `Err(why)` if there is one that must not be used.
fn read_existing(path: &Path) -> Result<Option<Secret>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("it could not be read ({e})")),
    };
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("its permissions could not be read ({e})"))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "it is accessible to other users (mode {:o})",
            mode & 0o777
        ));
    }
    let existing = text.trim();
    let well_formed = existing.len() == CLAIM_CODE_LEN
        && existing.bytes().all(|b| UNAMBIGUOUS_ALPHABET.contains(&b));
    if !well_formed {
        return Err("it does not hold a valid claim code".to_owned());
    }
    Ok(Some(Secret::new(existing.to_owned())))
}

/// Deletes the claim code file; a missing file is fine.
pub(super) fn remove(path: &Path) -> Result<(), AccountsError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(source) => Err(AccountsError::Remove {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Whether `typed` is `expected`, in constant time, ignoring case and the spaces and dashes
/// people add when they copy a code from a screen.
pub(super) fn code_matches(expected: &Secret, typed: &str) -> bool {
    let normalized: Vec<u8> = typed
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .flat_map(char::to_uppercase)
        .map(|c| u8::try_from(c).unwrap_or(0))
        .collect();
    expected.expose().as_bytes().ct_eq(&normalized).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_created_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("claim-code");
        let first = load_or_create(&path).unwrap();
        assert_eq!(first.expose().len(), CLAIM_CODE_LEN);
        assert!(
            first
                .expose()
                .bytes()
                .all(|b| UNAMBIGUOUS_ALPHABET.contains(&b))
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = load_or_create(&path).unwrap();
        assert_eq!(again.expose(), first.expose());
    }

    #[test]
    fn damaged_or_exposed_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("claim-code");
        std::fs::write(&path, "not a code").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let replaced = load_or_create(&path).unwrap();
        assert_ne!(replaced.expose(), "not a code");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let again = load_or_create(&path).unwrap();
        assert_ne!(again.expose(), replaced.expose());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn matching_forgives_case_spaces_and_dashes_only() {
        let expected = Secret::new("ACDEFGHJKMNP".to_owned());
        assert!(code_matches(&expected, "ACDEFGHJKMNP"));
        assert!(code_matches(&expected, "acde-fghj-kmnp"));
        assert!(code_matches(&expected, " ACDE FGHJ KMNP "));
        assert!(!code_matches(&expected, "ACDEFGHJKMNQ"));
        assert!(!code_matches(&expected, "ACDEFGHJKMN"));
        assert!(!code_matches(&expected, "ACDEFGHJKMNPP"));
        assert!(!code_matches(&expected, ""));
        assert!(!code_matches(&expected, "ACDEFGHJKMNP\u{0}"));
    }

    #[test]
    fn removing_a_missing_file_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        assert!(remove(&dir.path().join("claim-code")).is_ok());
    }
}
