//! The audit log: who did what, when, from where, and with what outcome, one JSON object per
//! line in `<state>/audit.log`. roomd only appends to it; it rotates the file at a size cap,
//! deletes records past their retention, and counts anonymous 404/405 noise instead of writing
//! each request (see docs/privacy.md).

mod chain;
mod error;
pub mod housekeeping;
mod log;
mod noise;
mod record;
mod retention;
mod reverse_lines;

pub use chain::{ChainBreak, ChainReport};
pub use error::AuditError;
pub use log::{AUDIT_FILE, AuditLog, AuditSettings, MAX_READ_LIMIT, MIN_FREE_BYTES};
pub use record::{AuditRecord, NewAuditRecord};
