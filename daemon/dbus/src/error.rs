//! D-Bus errors of `org.roomd.Room1`: named `org.roomd.Error.<Kind>` after the API's error code
//! (`invalid_command` → `InvalidCommand`), with the API's message, so that a D-Bus caller and
//! an HTTPS caller are told the same thing in the same words.

use zbus::DBusError;
use zbus::message::{Header, Message};
use zbus::names::ErrorName;

use roomd_api::ApiError;

/// Prefix of every error name of the interface.
pub const ERROR_PREFIX: &str = "org.roomd.Error";

/// A refused or failed call, as the caller receives it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {message}")]
pub struct RoomError {
    /// `org.roomd.Error.<Kind>`.
    name: String,
    /// The API's message for the same refusal.
    message: String,
    /// What the API would have answered, for the audit log.
    http_status: u16,
}

impl RoomError {
    /// The full D-Bus error name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status the API gives for the same refusal.
    pub fn http_status(&self) -> u16 {
        self.http_status
    }
}

impl From<ApiError> for RoomError {
    fn from(e: ApiError) -> Self {
        RoomError {
            name: format!("{ERROR_PREFIX}.{}", camel_case(e.code())),
            message: e.to_string(),
            http_status: e.http_status(),
        }
    }
}

/// `invalid_command` → `InvalidCommand`: D-Bus error names' last element is a plain identifier.
fn camel_case(code: &str) -> String {
    code.split('_')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

impl DBusError for RoomError {
    fn create_reply(&self, call: &Header<'_>) -> zbus::Result<Message> {
        Message::error(call, self.name()).build(&(self.message.as_str(),))
    }

    fn name(&self) -> ErrorName<'_> {
        // Built from a fixed prefix and an identifier made of ASCII letters (the API's codes are
        // lowercase words joined by `_`), so always a valid error name.
        ErrorName::from_str_unchecked(&self.name)
    }

    fn description(&self) -> Option<&str> {
        Some(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_api_codes() {
        let e = RoomError::from(ApiError::InvalidCommand("audio.volume.set: level".into()));
        assert_eq!(e.name(), "org.roomd.Error.InvalidCommand");
        assert_eq!(e.message(), "audio.volume.set: level");
        assert_eq!(e.http_status(), 422);
        let e = RoomError::from(ApiError::Forbidden("no".into()));
        assert_eq!(e.name(), "org.roomd.Error.Forbidden");
        assert!(ErrorName::try_from(e.name()).is_ok());
    }
}
