//! Tests of this crate and of the crates above it (meetings) start live pipelines; they take
//! turns through this lock. It lives outside `#[cfg(test)]` so that other crates' tests can
//! hold it too.

use roomd_base::sync::lock;

/// Live pipelines started at the same moment in one process sometimes stall on GStreamer 1.22
/// (a started pipeline that never delivers its first frames; seen only when several start
/// together under load). Tests that run pipelines therefore hold this guard while they do.
pub fn one_pipeline_test_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    lock(&SERIAL)
}
