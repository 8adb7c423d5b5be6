//! File-system helpers shared by every module that persists state.

mod atomic;

pub use atomic::{AtomicWriteError, write_atomic};
