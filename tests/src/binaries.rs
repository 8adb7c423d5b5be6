//! Where the binaries under test are: `ROOMD_BIN` / `ROOMCTL_BIN`, else next to the running
//! test executable (cargo puts tests in `target/<profile>/deps/` and binaries one level up).

use std::path::PathBuf;

use crate::HarnessError;

/// Path of the roomd binary to test.
pub fn roomd_bin() -> Result<PathBuf, HarnessError> {
    locate("roomd", "ROOMD_BIN")
}

/// Path of the roomctl binary to test.
pub fn roomctl_bin() -> Result<PathBuf, HarnessError> {
    locate("roomctl", "ROOMCTL_BIN")
}

fn locate(name: &'static str, env: &'static str) -> Result<PathBuf, HarnessError> {
    let path = match std::env::var_os(env) {
        Some(path) => PathBuf::from(path),
        None => next_to_current_exe(name)?,
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(HarnessError::BinaryMissing { name, env, path })
    }
}

fn next_to_current_exe(name: &str) -> Result<PathBuf, HarnessError> {
    let exe = std::env::current_exe()
        .map_err(|e| HarnessError::io("cannot find the running test executable", e))?;
    let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    Ok(dir.join(name))
}
