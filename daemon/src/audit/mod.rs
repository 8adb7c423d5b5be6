//! The audit log: who did what, when, from where, and with what outcome, one JSON object per
//! line in `<state>/audit.log`. roomd only ever appends to it; rotation and retention are the
//! operator's business.

mod error;
mod log;
mod record;
mod reverse_lines;

pub use error::AuditError;
pub use log::{AUDIT_FILE, AuditLog, MAX_READ_LIMIT};
pub use record::{AuditRecord, NewAuditRecord};
