//! Crash safety of `Config::save`: a process that keeps rewriting the configuration file is
//! killed at random moments, again and again, and the file it leaves behind must always be one
//! complete, valid configuration, the old one or the new one.
//!
//! The writer is this test binary itself, re-executed to run only `crash_child_rewrites_forever`,
//! which does its work only when `ROOMD_CRASH_CHILD_FILE` is set (otherwise it passes at once).

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, getppid};
use roomd_model::config::{Config, Layout, LogLevel};

const CHILD_FILE_ENV: &str = "ROOMD_CRASH_CHILD_FILE";
const CHILD_TEST: &str = "crash_child_rewrites_forever";
const KILLS: usize = 250;
const MAX_DELAY_MICROS: u32 = 30_000;

/// Two valid configurations that differ in many keys; both have the largest allowed
/// certificate-name list, so each write is a few kilobytes and takes a while.
fn config_a() -> Config {
    let mut config = Config::default();
    config.system.name = "Crash test room A".to_owned();
    config.audio.default_volume = 11;
    config.video.default_layout = Layout::Grid;
    config.logging.level = LogLevel::Debug;
    config.api.certificate_names = long_names("alpha");
    config
}

fn config_b() -> Config {
    let mut config = Config::default();
    config.system.name = "Crash test room B".to_owned();
    config.audio.default_volume = 99;
    config.video.default_layout = Layout::Presentation;
    config.standby.enabled = false;
    config.api.listen = vec!["0.0.0.0:9443".parse().expect("a valid socket address")];
    config.api.certificate_names = long_names("bravo");
    config
}

fn long_names(word: &str) -> Vec<String> {
    (0..16)
        .map(|i| {
            format!(
                "{word}-{i}.{}.{}.example.org",
                "x".repeat(60),
                "y".repeat(60)
            )
        })
        .collect()
}

/// Kills the writer if the test fails half-way, so no orphan keeps rewriting files.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn random_delay() -> Duration {
    let mut bytes = [0u8; 4];
    roomd_base::random::fill(&mut bytes);
    Duration::from_micros(u64::from(
        u32::from_le_bytes(bytes) % (MAX_DELAY_MICROS + 1),
    ))
}

#[test]
fn crash_child_rewrites_forever() {
    let Some(path) = std::env::var_os(CHILD_FILE_ENV) else {
        return; // an ordinary test run: only the parent test below starts this as a writer
    };
    let path = Path::new(&path);
    let parent = getppid();
    let (a, b) = (config_a(), config_b());
    loop {
        a.save(path).expect("the writer can save config A");
        b.save(path).expect("the writer can save config B");
        if getppid() != parent {
            return; // the parent test is gone; do not keep writing as an orphan
        }
    }
}

#[test]
fn killed_writer_always_leaves_the_old_or_the_new_file() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("roomd.toml");
    let (a, b) = (config_a(), config_b());
    assert_ne!(a, b);
    assert!(
        a.to_toml_string().unwrap().len() > 2000,
        "writes are not trivially small"
    );

    a.save(&path).expect("the initial file is written");
    assert_eq!(Config::load(&path).expect("the initial file loads"), a);

    let exe = std::env::current_exe().expect("the test binary's path");
    let started = Instant::now();
    let (mut seen_a, mut seen_b, mut changes) = (0usize, 0usize, 0usize);
    let mut previous = a.clone();
    for kill_number in 1..=KILLS {
        let child = Command::new(&exe)
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD_FILE_ENV, &path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the writer starts");
        let mut child = KillOnDrop(child);
        std::thread::sleep(random_delay());
        let pid = Pid::from_raw(i32::try_from(child.0.id()).expect("a pid fits in i32"));
        kill(pid, Signal::SIGKILL).expect("the writer can be killed");
        let status = child.0.wait().expect("the killed writer is reaped");
        assert_eq!(
            status.signal(),
            Some(Signal::SIGKILL as i32),
            "kill {kill_number}: the writer must run until killed, but ended with {status}"
        );

        let found = Config::load(&path)
            .unwrap_or_else(|e| panic!("kill {kill_number}: the file is not valid: {e}"));
        if found == a {
            seen_a += 1;
        } else if found == b {
            seen_b += 1;
        } else {
            panic!("kill {kill_number}: the file is valid but neither A nor B: {found:?}");
        }
        if found != previous {
            changes += 1;
        }
        previous = found;
    }

    let leftovers = std::fs::read_dir(dir.path())
        .expect("the directory lists")
        .filter(|entry| entry.as_ref().is_ok_and(|e| e.path() != path))
        .count();
    eprintln!(
        "{KILLS} kills in {:?}: file was A {seen_a} times, B {seen_b} times, changed {changes} \
         times; {leftovers} temporary files from interrupted writes",
        started.elapsed()
    );
    assert!(
        seen_a > 0 && seen_b > 0 && changes > 1,
        "kills must land while the writer is rewriting (A {seen_a}, B {seen_b}, changes {changes})"
    );
}
