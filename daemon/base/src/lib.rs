//! What every roomd crate shares with the operating system: atomic file writes, the random
//! source, jittered retry delays, which addresses count as one client, and JSON errors that name the field at fault.
//! Small on purpose: nothing here knows about rooms.

pub mod backoff;
pub mod fsutil;
pub mod json_error;
pub mod net_source;
pub mod random;
pub mod sync;
