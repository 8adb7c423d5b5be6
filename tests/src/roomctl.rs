//! Runs the real `roomctl` binary against a test's roomd. The token goes through the
//! environment (`ROOMCTL_TOKEN`), as an operator would pass it, so it never shows in `ps`.

use std::process::Command;

use crate::HarnessError;
use crate::binaries::roomctl_bin;
use crate::roomd::Roomd;

/// What one roomctl run did.
#[derive(Debug)]
pub struct RoomctlOutput {
    /// Exit code; `None` if a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Roomd {
    /// Runs `roomctl ARGS` with this roomd's URL and certificate and `token` (if any) in the
    /// environment.
    pub fn roomctl(
        &self,
        token: Option<&str>,
        args: &[&str],
    ) -> Result<RoomctlOutput, HarnessError> {
        let mut command = Command::new(roomctl_bin()?);
        command
            .env_remove("ROOMCTL_TOKEN")
            .env("ROOMCTL_URL", self.base_url())
            .env("ROOMCTL_CACERT", self.cert_path())
            .args(args);
        if let Some(token) = token {
            command.env("ROOMCTL_TOKEN", token);
        }
        run(command)
    }
}

/// Runs `roomctl ARGS` with exactly the environment given (nothing from the harness), for tests
/// of its options and defaults.
pub fn run_roomctl(env: &[(&str, &str)], args: &[&str]) -> Result<RoomctlOutput, HarnessError> {
    let mut command = Command::new(roomctl_bin()?);
    command
        .env_remove("ROOMCTL_TOKEN")
        .env_remove("ROOMCTL_URL")
        .env_remove("ROOMCTL_CACERT")
        .envs(env.iter().copied())
        .args(args);
    run(command)
}

fn run(mut command: Command) -> Result<RoomctlOutput, HarnessError> {
    let output = command
        .output()
        .map_err(|e| HarnessError::io("cannot run roomctl", e))?;
    Ok(RoomctlOutput {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}
