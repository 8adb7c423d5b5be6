//! The rule for usernames: `^[a-z_][a-z0-9_.-]{0,31}$` (the POSIX-portable shape, so names are
//! safe in logs, file names and shells and cannot impersonate each other with look-alike letters).

use super::error::{AccountsError, shorten};

/// Longest username, in bytes (all ASCII, so also characters).
pub const MAX_USERNAME_LEN: usize = 32;

/// Checks `username` against the rule above; [`AccountsError::InvalidUsername`] says which part
/// it breaks.
pub fn validate_username(username: &str) -> Result<(), AccountsError> {
    let invalid = |reason| AccountsError::InvalidUsername {
        username: shorten(username),
        reason,
    };
    let mut bytes = username.bytes();
    match bytes.next() {
        None => return Err(invalid("it is empty")),
        Some(b'a'..=b'z' | b'_') => {}
        Some(_) => return Err(invalid("it must start with a lowercase letter a-z or '_'")),
    }
    if username.len() > MAX_USERNAME_LEN {
        return Err(invalid("it is longer than 32 characters"));
    }
    if !bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-')) {
        return Err(invalid(
            "only lowercase letters a-z, digits, '_', '.' and '-' are allowed",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_shape() {
        for name in [
            "alice",
            "_svc",
            "a",
            "bob.smith-2",
            "x_1.2-3",
            &"a".repeat(32),
        ] {
            assert!(validate_username(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn refuses_everything_else_with_a_reason() {
        for name in [
            "",
            "Alice",
            "1alice",
            "-alice",
            ".alice",
            "al ice",
            "alice/..",
            "álice",
            "alice\n",
            &"a".repeat(33),
        ] {
            let err = validate_username(name).unwrap_err();
            assert!(
                matches!(err, AccountsError::InvalidUsername { .. }),
                "{name:?}: {err}"
            );
        }
        let err = validate_username(&"a".repeat(33)).unwrap_err();
        assert!(err.to_string().contains("longer than 32"), "{err}");
    }
}
