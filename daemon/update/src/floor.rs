//! The security floor that survives a rollback: `<state_dir>/update/floor`.
//!
//! Booting an older slot (after a fallback) must not lower the floor: the floor is raised to the
//! running image's at every start and never lowered, so the device refuses what any image it
//! ever ran refused.

use std::cmp::Ordering;
use std::path::Path;

use roomd_base::fsutil::write_atomic;
use roomd_model::update::compare_versions;

/// The higher of two floors (an empty floor is none).
pub(crate) fn higher(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ if compare_versions(a, b) == Ordering::Less => b.to_owned(),
        _ => a.to_owned(),
    }
}

/// Reads the persisted floor (empty when there is none yet).
pub(crate) fn read(path: &Path) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e),
    }
}

/// Raises the persisted floor to `image_floor` when that is higher; returns the device floor.
pub(crate) fn raise(path: &Path, image_floor: &str) -> Result<String, String> {
    let persisted = read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let floor = higher(&persisted, image_floor);
    if floor != persisted {
        write_atomic(path, format!("{floor}\n").as_bytes(), 0o600)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(floor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_rises_and_never_falls() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("floor");
        assert_eq!(raise(&path, "").unwrap(), "");
        assert_eq!(raise(&path, "2026.10").unwrap(), "2026.10");
        assert_eq!(raise(&path, "2026.12").unwrap(), "2026.12");
        // An older image after a rollback: the device keeps the higher floor.
        assert_eq!(raise(&path, "2026.10").unwrap(), "2026.12");
        assert_eq!(read(&path).unwrap(), "2026.12");
    }
}
