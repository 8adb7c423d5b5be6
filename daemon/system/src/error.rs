//! Why a host setting could not be applied or read.

/// Why a host setting could not be applied or read. Every message names the service or file.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The system D-Bus cannot be reached (no bus, e.g. a development machine or a container).
    #[error("the system D-Bus cannot be reached: {0}")]
    NoBus(String),
    /// A service refused or failed (polkit said no, the value was refused, it is not installed).
    #[error("{service}: {reason}")]
    Service {
        /// The service, e.g. `hostnamed`.
        service: &'static str,
        /// What it said.
        reason: String,
    },
    /// The networkd file could not be written or removed.
    #[error("cannot write {path}: {reason}")]
    NetworkFile {
        /// The file.
        path: String,
        /// The operating system's error.
        reason: String,
    },
    /// A time could not be computed (an unknown time zone, a date out of range).
    #[error("{0}")]
    Time(String),
}

impl HostError {
    pub(crate) fn service(service: &'static str) -> impl Fn(zbus::Error) -> HostError {
        move |e| HostError::Service {
            service,
            reason: e.to_string(),
        }
    }
}
