//! The running system's os-release file: which firmware image runs.

use std::path::Path;

/// What os-release says about the running image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OsRelease {
    /// `IMAGE_ID`.
    pub image_id: String,
    /// `IMAGE_VERSION`; empty when roomd is not running from a firmware image.
    pub image_version: String,
    /// `ROOMD_SECURITY_FLOOR`: the lowest version this image lets the device go back to.
    pub security_floor: String,
}

impl OsRelease {
    /// Reads `path`; a missing file is an empty release (not a firmware image).
    pub fn read(path: &Path) -> std::io::Result<OsRelease> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(OsRelease::parse(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(OsRelease::default()),
            Err(e) => Err(e),
        }
    }

    /// Parses os-release's `KEY=value` lines (values optionally quoted, as os-release(5) says).
    pub fn parse(text: &str) -> OsRelease {
        let mut release = OsRelease::default();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = unquote(value.trim());
            match key.trim() {
                "IMAGE_ID" => release.image_id = value,
                "IMAGE_VERSION" => release.image_version = value,
                "ROOMD_SECURITY_FLOOR" => release.security_floor = value,
                _ => {}
            }
        }
        release
    }
}

fn unquote(value: &str) -> String {
    let inner = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_image_fields_quoted_or_not() {
        let release = OsRelease::parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12\"\n# comment\nIMAGE_ID=roomd\nIMAGE_VERSION=\"2026.12.1\"\nROOMD_SECURITY_FLOOR='2026.10'\n",
        );
        assert_eq!(release.image_id, "roomd");
        assert_eq!(release.image_version, "2026.12.1");
        assert_eq!(release.security_floor, "2026.10");
        assert_eq!(OsRelease::parse("ID=debian\n").image_version, "");
    }
}
