//! The audit log against a live roomd: anonymous 404/405 noise becomes one counted record per
//! source and status instead of a line per request, and a change whose audit record cannot be
//! written (the state directory's file system is full) is refused and changes nothing.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use roomd_tests::{HarnessError, Roomd};
use serde_json::{Value, json};

fn audit_records(roomd: &Roomd) -> Result<Vec<Value>, HarnessError> {
    let answer = roomd
        .get("/api/v1/audit?limit=1000")
        .bearer(&roomd.admin_token()?)
        .send()?
        .expect_status(200, "GET /api/v1/audit")?
        .json()?;
    Ok(answer.as_array().cloned().unwrap_or_default())
}

/// The count a noise record gives in its detail ("40 anonymous requests answered 404 …").
fn counted(record: &Value) -> u64 {
    record["detail"]
        .as_str()
        .and_then(|d| d.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {record}"))
}

#[test]
fn anonymous_404_and_405_noise_is_counted_per_source_not_written_per_request()
-> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("[logging]\naudit_noise_interval_seconds = 2")?;
    let scanner = Ipv4Addr::new(127, 0, 0, 2);
    let other = Ipv4Addr::new(127, 0, 0, 3);
    // Each request comes on a new connection; one source may open 20 at once before the API's
    // per-source handshake rate applies (tls/source_limit.rs), so the scanner sends 18.
    for i in 0..12 {
        roomd
            .request("POST", &format!("/api/v1/wp-login-{i}"))
            .from_source(scanner)
            .send()?
            .expect_status(404, "an anonymous POST to a route that does not exist")?;
    }
    for _ in 0..6 {
        roomd
            .request("DELETE", "/api/v1/health")
            .from_source(scanner)
            .send()?
            .expect_status(405, "an anonymous DELETE of a read-only route")?;
    }
    for _ in 0..5 {
        roomd
            .request("PUT", "/api/v1/nothing")
            .from_source(other)
            .send()?
            .expect_status(404, "an anonymous PUT from another source")?;
    }
    // Somebody with credentials is still written request by request.
    roomd
        .request("POST", "/api/v1/no-such-thing")
        .bearer(&roomd.admin_token()?)
        .send()?
        .expect_status(404, "an admin's POST to a route that does not exist")?;

    let noise = |records: &[Value], source: &str, status: u64| -> Vec<Value> {
        records
            .iter()
            .filter(|r| r["actor"] == "anonymous" && r["source"] == source && r["status"] == status)
            .cloned()
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let records = loop {
        let records = audit_records(&roomd)?;
        let total: u64 = ["127.0.0.2", "127.0.0.3"]
            .iter()
            .flat_map(|source| [404, 405].map(|status| noise(&records, source, status)))
            .flatten()
            .map(|r| counted(&r))
            .sum();
        if total >= 23 || Instant::now() > deadline {
            break records;
        }
        std::thread::sleep(Duration::from_millis(200));
    };

    for (source, status, requests) in [
        ("127.0.0.2", 404, 12),
        ("127.0.0.2", 405, 6),
        ("127.0.0.3", 404, 5),
    ] {
        let lines = noise(&records, source, status);
        // The requests took a few interval lengths at most: a few lines, never one per request.
        assert!(
            !lines.is_empty() && lines.len() <= 3,
            "{requests} anonymous {status}s from {source} gave {} audit records: {lines:#?}",
            lines.len()
        );
        let sum: u64 = lines.iter().map(counted).sum();
        assert_eq!(sum, requests, "counted {status}s from {source}: {lines:#?}");
        let last = &lines[0];
        assert!(
            last["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/api/v1/")),
            "the last request is shown: {last}"
        );
    }
    assert!(
        records.iter().any(|r| r["path"] == "/api/v1/no-such-thing"
            && r["status"] == 404
            && r["actor"] != "anonymous"
            && r["detail"].is_null()),
        "the authenticated 404 has its own record: {records:#?}"
    );
    Ok(())
}

/// The state directory moved onto a small tmpfs of its own, so that the test can fill it.
struct SmallFileSystem {
    mount_point: PathBuf,
}

impl SmallFileSystem {
    /// Stops `roomd`, puts its state directory on a tmpfs of `size`, and starts it again.
    fn under(roomd: &mut Roomd, size: &str) -> Result<SmallFileSystem, HarnessError> {
        let state = roomd.state_dir().to_owned();
        roomd.stop_sigterm()?;
        let saved = roomd.dir().join("state-saved");
        run("cp", &["-a", path(&state), path(&saved)])?;
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
                path(&state),
            ],
        )?;
        let mounted = SmallFileSystem {
            mount_point: state.clone(),
        };
        run("cp", &["-a", &format!("{}/.", path(&saved)), path(&state)])?;
        roomd.start_again()?;
        Ok(mounted)
    }

    /// Writes a file until the file system has no space left; returns its path.
    fn fill(&self) -> PathBuf {
        let filler = self.mount_point.join("filler");
        let mut file = std::fs::File::create(&filler).expect("creating the filler file");
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        // The last partial chunk, byte by byte in bigger steps.
        while file.write_all(&[0u8; 512]).is_ok() {}
        filler
    }
}

impl Drop for SmallFileSystem {
    fn drop(&mut self) {
        // Lazy: roomd may still have files open there; the tmpfs goes when it exits.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .status();
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

fn run(program: &str, args: &[&str]) -> Result<(), HarnessError> {
    let status =
        Command::new(program)
            .args(args)
            .status()
            .map_err(|e| HarnessError::CommandFailed {
                command: program.to_owned(),
                message: e.to_string(),
            })?;
    if !status.success() {
        return Err(HarnessError::Config {
            message: format!("{program} {} failed: {status}", args.join(" ")),
        });
    }
    Ok(())
}

#[test]
fn a_change_whose_audit_record_cannot_be_written_is_refused_and_changes_nothing()
-> Result<(), HarnessError> {
    let mut roomd = Roomd::start_claimed("")?;
    let disk = SmallFileSystem::under(&mut roomd, "4m")?;
    let admin = roomd.admin_token()?;
    let room_name = |roomd: &Roomd| -> Result<Value, HarnessError> {
        Ok(roomd
            .get("/api/v1/config")
            .bearer(&admin)
            .send()?
            .expect_status(200, "GET /api/v1/config")?
            .json()?["system"]["name"]
            .clone())
    };
    let users = |roomd: &Roomd| -> Result<String, HarnessError> {
        Ok(roomd
            .get("/api/v1/users")
            .bearer(&admin)
            .send()?
            .expect_status(200, "GET /api/v1/users")?
            .text())
    };
    let name_before = room_name(&roomd)?;
    let users_before = users(&roomd)?;
    let records_before = audit_records(&roomd)?;

    let filler = disk.fill();
    let refused = roomd
        .request("PATCH", "/api/v1/config")
        .bearer(&admin)
        .json(&json!({ "system": { "name": "Unaudited Room" } }))
        .send()?;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.error_code().as_deref(), Some("unavailable"));
    let message = refused.error_message().unwrap_or_default();
    assert!(
        message.contains("audit log") && message.contains("nothing was changed"),
        "{message}"
    );
    assert!(
        !message.contains(path(roomd.state_dir())),
        "no paths for callers: {message}"
    );
    assert_eq!(
        room_name(&roomd)?,
        name_before,
        "the refused change was not made"
    );

    let refused = roomd
        .request("POST", "/api/v1/users")
        .bearer(&admin)
        .json(&json!({ "username": "carol", "password": "a long enough password", "role": "user" }))
        .send()?;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(users(&roomd)?, users_before, "no user was created");
    assert!(
        roomd
            .stderr_text()
            .contains("refusing a change that cannot be audited"),
        "the operator is told why: {}",
        roomd.stderr_text()
    );

    // With room again, the same change is made and recorded.
    std::fs::remove_file(&filler).expect("removing the filler file");
    roomd
        .request("PATCH", "/api/v1/config")
        .bearer(&admin)
        .json(&json!({ "system": { "name": "Audited Room" } }))
        .send()?
        .expect_status(200, "the same change once the disk has room")?;
    assert_eq!(room_name(&roomd)?, json!("Audited Room"));
    let records = audit_records(&roomd)?;
    let newest = &records[0];
    assert_eq!(
        (
            newest["method"].as_str(),
            newest["path"].as_str(),
            newest["status"].as_u64()
        ),
        (Some("PATCH"), Some("/api/v1/config"), Some(200)),
        "{newest}"
    );
    assert!(records.len() > records_before.len());
    drop(roomd);
    drop(disk);
    Ok(())
}

#[test]
fn verify_audit_finds_a_line_removed_from_the_audit_log() -> Result<(), HarnessError> {
    let mut roomd = Roomd::start_claimed("")?;
    for name in ["Room A", "Room B", "Room C"] {
        roomd
            .request("PATCH", "/api/v1/config")
            .bearer(&roomd.admin_token()?)
            .json(&json!({ "system": { "name": name } }))
            .send()?
            .expect_status(200, "a config change")?;
    }
    roomd.stop_sigterm()?;
    let verify = |roomd: &Roomd| {
        let output = Command::new(roomd_tests::roomd_bin().expect("the roomd binary"))
            .arg("--config")
            .arg(roomd.config_path())
            .arg("verify-audit")
            .output()
            .expect("running roomd verify-audit");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (code, text) = verify(&roomd);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("hash chain intact"), "{text}");

    // Somebody with root on the device removes the record of the second change.
    let log = roomd.state_dir().join("audit.log");
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .expect("reading audit.log")
        .lines()
        .map(str::to_owned)
        .collect();
    let victim = lines
        .iter()
        .position(|l| l.contains("\"PATCH\"") && l.contains("system.name"))
        .map(|first| first + 1)
        .expect("a config change in the audit log");
    let victim_seq: Value = serde_json::from_str(&lines[victim]).expect("a record");
    let kept: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    std::fs::write(&log, kept).expect("writing audit.log");
    let (code, text) = verify(&roomd);
    assert_eq!(code, Some(1), "{text}");
    let next = victim_seq["seq"].as_u64().unwrap_or_default() + 1;
    assert!(
        text.contains(&format!(
            "the line before record {next} was removed or changed"
        )),
        "{text}"
    );
    Ok(())
}
