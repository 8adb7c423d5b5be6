//! Running a helper program (openssl, dbus-daemon, busctl, ...) whose failure fails the harness.

use std::process::{Command, Stdio};

use crate::HarnessError;

/// Runs `command` with no input and returns its standard output; a failure to start or a
/// non-zero exit is a [`HarnessError::Config`] naming the command and its standard error.
pub(crate) fn run_checked(command: &mut Command) -> Result<String, HarnessError> {
    let shown = format!("{command:?}");
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| HarnessError::io(format!("cannot run {shown}"), e))?;
    if !output.status.success() {
        return Err(HarnessError::Config {
            message: format!(
                "{shown} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The command line prefix that runs what follows as `user` with primary group `gid` and the
/// user's supplementary groups (util-linux `setpriv`; this process must be root).
pub(crate) fn setpriv_prefix(user: &str, gid: &str) -> Vec<String> {
    [
        "setpriv",
        "--reuid",
        user,
        "--regid",
        gid,
        "--init-groups",
        "--",
    ]
    .map(str::to_owned)
    .to_vec()
}
