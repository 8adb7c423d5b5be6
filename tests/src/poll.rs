//! Waiting for a state rather than a time: a probe is asked again until it yields a value or
//! the bound passes.

use std::time::{Duration, Instant};

use crate::HarnessError;

/// How often a probe is asked again.
const INTERVAL: Duration = Duration::from_millis(100);

/// Asks `probe` until it returns `Some`, at most for `timeout`; its errors end the wait at once.
/// On timeout the error names `what`.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<Option<T>, HarnessError>,
) -> Result<T, HarnessError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe()? {
            return Ok(value);
        }
        if Instant::now() > deadline {
            return Err(HarnessError::Timeout {
                what: what.to_owned(),
                timeout,
            });
        }
        std::thread::sleep(INTERVAL);
    }
}
