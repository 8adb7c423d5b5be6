//! The contract holds under fuzzing: schemathesis (property-based, from PyPI) generates requests
//! for every operation of the `openapi.json` a real, claimed roomd serves, sends them as the
//! admin over loopback, and runs all of its checks on every answer: no 5xx, only documented
//! statuses, every body matches its schema, every error is JSON, schema-valid requests are
//! accepted and schema-violating ones refused, 405 carries `Allow`, wrong credentials get 401.
//!
//! When this test fails, its message is schemathesis's report: per operation the check that
//! failed, the response, and a `curl` line that reproduces it. Either the server is wrong (fix
//! the handler) or the contract is (fix `daemon/openapi.json`); a status is fine to document
//! where it is the right answer. Per-operation settings, each with its reason, are in
//! `tests/fuzz/schemathesis.toml`.
//!
//! `make test` installs the pinned schemathesis into `target/schemathesis` and points
//! `ROOMD_SCHEMATHESIS` at its `st`; without that variable, `st` is taken from `PATH`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use roomd_tests::{HarnessError, Roomd};

/// The version `make test` installs (tests/fuzz/requirements.txt); another one may generate
/// other requests or check differently.
const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// Fixed, so that a failure found once is found again by the next run.
const SEED: &str = "20261211";

/// Test cases per operation and phase: both passes took 47 s on the 2-core machine at a load
/// average of 8 (other builds and tests running), well under the 3 minutes allowed.
const MAX_EXAMPLES: &str = "40";

/// Operations the fuzzer leaves out, with the reason. Keep this list short: everything else
/// is fuzzed.
const NOT_FUZZED: &[(&str, &str)] = &[(
    "guestMediaConnect",
    "its body is application/sdp, which schemathesis cannot serialise (and it needs a guest's \
     token, which the fuzzer has not); guests' WHIP/WHEP offers are tested with real peers in \
     meeting_whip_whep.rs",
)];

/// Every other operation is fuzzed in the first pass, new ones included. Side effects there stay
/// within this throwaway roomd: `PATCH /config` may change settings (`api.listen` takes effect at
/// the next start only, which never comes), commands may move the simulated room, the stateful
/// phase may install the device's own certificate again. An operation that can end the fuzzer's
/// credentials or its connection belongs in `RUN_LAST` below, with its reason.
///
/// Operations that can take away the fuzzer's own credentials: its stateful phase lists tokens
/// and revokes them (the admin token it runs with among them), and could delete the admin user
/// after making a second admin. They run in a second pass of their own, after everything else,
/// with a token of their own.
const RUN_LAST: &[(&str, &str)] = &[
    (
        "revokeToken",
        "GET /tokens then DELETE /tokens/{id} revokes the fuzzer's token",
    ),
    (
        "deleteUser",
        "GET /users then DELETE /users/{username} can remove the admin",
    ),
];

/// Operations that also run in the last pass, so that its stateful phase revokes tokens and
/// deletes users that exist (made or listed there) rather than only guessed ones.
const LAST_PASS_SOURCES: &[&str] = &["listTokens", "createToken", "listUsers", "createUser"];

/// Where the pinned schemathesis is.
fn schemathesis() -> PathBuf {
    std::env::var_os("ROOMD_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("st"))
}

fn config_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/schemathesis.toml")
}

fn check_version(st: &Path) {
    let output = Command::new(st).arg("--version").output().unwrap_or_else(|e| {
        panic!(
            "cannot run schemathesis ({}): {e}; `make test` installs it into target/schemathesis \
             (or: pip install schemathesis=={SCHEMATHESIS_VERSION})",
            st.display()
        )
    });
    let version = String::from_utf8_lossy(&output.stdout);
    assert!(
        version.contains(SCHEMATHESIS_VERSION),
        "{} is {:?}, the test is written for schemathesis {SCHEMATHESIS_VERSION}",
        st.display(),
        version.trim()
    );
}

/// Which operations one pass runs.
enum Pass<'a> {
    AllBut(Vec<&'a str>),
    Only(Vec<&'a str>),
}

fn run_pass(st: &Path, roomd: &Roomd, token: &str, pass: &Pass) -> Output {
    let base = roomd.base_url();
    let mut command = Command::new(st);
    command
        // schemathesis writes its example database and reports into the working directory.
        .current_dir(roomd.dir())
        .arg("--config-file")
        .arg(config_file())
        .arg("--no-color")
        .arg("run")
        .arg(format!("{base}/api/v1/openapi.json"))
        // The document's `servers` names the default port; the requests go to this roomd.
        .args(["--url", &base])
        // The harness's roomd has a self-signed certificate; the connection is loopback.
        .args(["--tls-verify", "false"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--seed", SEED])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--generation-database", "none"])
        // One worker: with several, hypothesis parses sources in parallel threads and Debian 12's
        // Python 3.11.2 fails with "AST constructor recursion depth mismatch" (a CPython bug fixed
        // in 3.11.5), reported as an error of a random operation.
        .args(["--workers", "1"])
        .args(["--request-timeout", "30"])
        // One client keeps to the API's budget of new connections per source (10/s after a
        // burst of 20, tls/source_limit.rs): requests that end their connection (a refused body,
        // for one) make the client open a new one, and faster than that some are closed before
        // TLS, which schemathesis reports as a network error.
        .args(["--rate-limit", "10/s"]);
    match pass {
        Pass::AllBut(left_out) => {
            for id in left_out {
                command.args(["--exclude-operation-id", id]);
            }
        }
        Pass::Only(ids) => {
            for id in ids {
                command.args(["--include-operation-id", id]);
            }
        }
    }
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", st.display()))
}

fn report(what: &str, output: &Output) -> Option<String> {
    if output.status.success() {
        return None;
    }
    Some(format!(
        "schemathesis found contract violations in {what} ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

#[test]
fn every_operation_holds_the_contract_under_fuzzing() -> Result<(), HarnessError> {
    let st = schemathesis();
    check_version(&st);
    let roomd = Roomd::start_claimed("")?;
    let started = Instant::now();

    let mut left_out: Vec<&str> = NOT_FUZZED.iter().map(|(id, _)| *id).collect();
    left_out.extend(RUN_LAST.iter().map(|(id, _)| *id));
    let main = run_pass(
        &st,
        &roomd,
        &roomd.token_for("admin")?,
        &Pass::AllBut(left_out),
    );
    let last = run_pass(
        &st,
        &roomd,
        &roomd.token_for("admin")?,
        &Pass::Only(
            RUN_LAST
                .iter()
                .map(|(id, _)| *id)
                .chain(LAST_PASS_SOURCES.iter().copied())
                .collect(),
        ),
    );
    eprintln!(
        "schemathesis ran both passes in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let failures: Vec<String> = [
        report("the main pass", &main),
        report("the pass of the operations that run last", &last),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    Ok(())
}
