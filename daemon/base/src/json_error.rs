//! Deserialisation errors that name the JSON field at fault, for messages a person can act on.

use std::fmt::Display;

/// A failed deserialisation: the dotted path of the offending field (None for the document
/// itself) and a message that starts with that path.
pub struct FieldError {
    /// Dotted path of the offending field, e.g. `inner.level`; None when the document itself
    /// is at fault.
    pub field: Option<String>,
    /// The error for a person, prefixed with `field` and `: ` when there is one.
    pub message: String,
}

impl<E: Display> From<serde_path_to_error::Error<E>> for FieldError {
    fn from(e: serde_path_to_error::Error<E>) -> Self {
        let path = e.path().to_string();
        if path == "." {
            FieldError {
                field: None,
                message: e.inner().to_string(),
            }
        } else {
            FieldError {
                message: format!("{path}: {}", e.inner()),
                field: Some(path),
            }
        }
    }
}

/// Deserialises `input` (e.g. a `serde_json::Value` or `&Value`) into `T`, naming the field at
/// fault on failure.
pub fn deserialize<'de, T, D>(input: D) -> Result<T, FieldError>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    serde_path_to_error::deserialize(input).map_err(FieldError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        inner: Inner,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        level: u8,
    }

    #[test]
    fn names_the_nested_field() {
        let e = deserialize::<Outer, _>(json!({"inner": {"level": "high"}})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("inner.level"));
        assert!(
            e.message.starts_with("inner.level: invalid type"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_wrong_document_has_no_field() {
        let e = deserialize::<Outer, _>(json!("not an object")).unwrap_err();
        assert_eq!(e.field, None);
    }
}
