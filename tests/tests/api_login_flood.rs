//! Password guessing against a live roomd: a flood of parallel logins stays within memory and
//! leaves the API answering (a global limit on password checks, 503 + `Retry-After` past it);
//! one source spraying many usernames is throttled; many sources guessing one account are
//! paced (a delay, never a lockout of the user's usual source).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use roomd_tests::{ADMIN_PASSWORD, ADMIN_USERNAME, ApiResponse, HarnessError, Roomd};
use serde_json::json;

/// Parallel logins of the flood, and the memory roomd may use meanwhile (issue 11, point 7).
const FLOOD_LOGINS: usize = 500;
const RSS_LIMIT_KIB: u64 = 150 * 1024;

fn login_from(
    roomd: &Roomd,
    username: &str,
    password: &str,
    source: Ipv4Addr,
) -> Result<ApiResponse, HarnessError> {
    roomd
        .request("POST", "/api/v1/session")
        .json(&json!({ "username": username, "password": password }))
        .from_source(source)
        .send()
}

/// The `n`th of many loopback source addresses (127.1.0.1 …); Linux routes 127/8 to `lo`.
fn source(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 1, (n / 250) as u8, (n % 250 + 1) as u8)
}

/// roomd's resident memory in KiB, from /proc.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A random-looking username per attempt, so no per-username count ever triggers.
fn random_username(n: usize) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "guess{n}x{:x}",
        nanos ^ (n as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    )
}

fn retry_after(response: &ApiResponse) -> Option<u64> {
    response.header("retry-after")?.trim().parse().ok()
}

#[test]
fn a_flood_of_parallel_logins_keeps_memory_bounded_and_the_api_answering()
-> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    let pid = roomd.pid().expect("roomd runs");
    let token = roomd.token_for("user")?;
    let before = rss_kib(pid).expect("VmRSS of roomd");

    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(Mutex::new(before));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(rss) = rss_kib(pid) {
                    let mut peak = peak.lock().unwrap();
                    *peak = (*peak).max(rss);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };

    let roomd = Arc::new(roomd);
    let start = Arc::new(Barrier::new(FLOOD_LOGINS + 1));
    let attackers: Vec<_> = (0..FLOOD_LOGINS)
        .map(|n| {
            let (roomd, start) = (roomd.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                login_from(&roomd, &random_username(n), "a wrong password!", source(n))
            })
        })
        .collect();
    start.wait();
    // Meanwhile an established client keeps asking for the status.
    let mut status_answers = Vec::new();
    let flood_began = Instant::now();
    while attackers.iter().any(|a| !a.is_finished()) {
        let asked = Instant::now();
        let answer = roomd.get("/api/v1/status").bearer(&token).send()?;
        status_answers.push((answer.status, asked.elapsed()));
        std::thread::sleep(Duration::from_millis(50));
    }
    let flood_took = flood_began.elapsed();
    let mut counts = std::collections::BTreeMap::<u16, usize>::new();
    // Connections past the API's bounds on new connections (handshakes in progress, see
    // tls/handshake.rs) are closed before TLS: no HTTP answer, counted apart.
    let mut closed_before_tls = 0;
    for attacker in attackers {
        let Ok(answer) = attacker.join().expect("attacker thread") else {
            closed_before_tls += 1;
            continue;
        };
        if answer.status == 503 {
            assert!(
                retry_after(&answer).is_some_and(|s| s >= 1),
                "503 without a Retry-After: {:?}",
                answer.headers
            );
            assert_eq!(answer.error_code().as_deref(), Some("unavailable"));
        }
        *counts.entry(answer.status).or_default() += 1;
    }
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler thread");
    let peak = *peak.lock().unwrap();
    eprintln!(
        "{FLOOD_LOGINS} parallel logins in {flood_took:?}: answers {counts:?}, \
         {closed_before_tls} closed before TLS; roomd RSS {before} KiB before, peak {peak} KiB; \
         {} status requests",
        status_answers.len()
    );

    assert!(
        peak < RSS_LIMIT_KIB,
        "roomd's RSS reached {peak} KiB during the flood (limit {RSS_LIMIT_KIB} KiB)"
    );
    assert!(
        counts.keys().all(|s| [401, 503].contains(s)),
        "every login is refused as wrong (401) or busy (503): {counts:?}"
    );
    assert!(
        counts.get(&503).is_some_and(|&n| n > 0),
        "a flood of {FLOOD_LOGINS} logins at once never met the limit: {counts:?}"
    );

    assert!(
        !status_answers.is_empty(),
        "the flood ended before the status was asked"
    );
    assert!(
        status_answers.iter().all(|(status, _)| *status == 200),
        "the status did not always answer 200 during the flood: {status_answers:?}"
    );

    // Afterwards the right password works at once (the flood locked nobody out).
    let admin = login_from(
        &roomd,
        ADMIN_USERNAME,
        ADMIN_PASSWORD,
        source(FLOOD_LOGINS + 1),
    )?;
    assert_eq!(admin.status, 200, "admin after the flood: {}", admin.text());
    Ok(())
}

#[test]
fn one_source_spraying_many_usernames_is_throttled_across_them() -> Result<(), HarnessError> {
    // Default threshold 5 per username and source; 4 × 5 = 20 per source over all usernames.
    let roomd = Roomd::start_claimed("")?;
    let sprayer = Ipv4Addr::new(127, 2, 0, 1);
    for n in 0..20 {
        let wrong = login_from(&roomd, &format!("user{n}"), "a wrong password!", sprayer)?;
        assert_eq!(wrong.status, 401, "guess #{n}: {}", wrong.text());
    }
    let next = login_from(&roomd, "yet-another-name", "a wrong password!", sprayer)?;
    assert_eq!(
        next.status,
        429,
        "21st name from one source: {}",
        next.text()
    );
    assert!(
        retry_after(&next).is_some_and(|s| s >= 1),
        "{:?}",
        next.headers
    );
    // Only the sprayer waits: the admin from elsewhere logs in.
    let elsewhere = login_from(
        &roomd,
        ADMIN_USERNAME,
        ADMIN_PASSWORD,
        Ipv4Addr::new(127, 2, 0, 2),
    )?;
    assert_eq!(elsewhere.status, 200, "{}", elsewhere.text());
    Ok(())
}

#[test]
fn many_sources_guessing_one_account_are_paced_and_the_user_is_never_locked_out()
-> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    // The admin's usual desk: the harness logged in from 127.0.0.1 when it claimed the device.
    let desk = Ipv4Addr::new(127, 0, 0, 1);
    // Ten failures from ten addresses (no address reaches its own limit).
    for n in 0..10 {
        let wrong = login_from(&roomd, ADMIN_USERNAME, "a wrong password!", source(n))?;
        assert_eq!(wrong.status, 401, "guess #{n}: {}", wrong.text());
    }
    // Now parallel guesses from new addresses are spaced out: 0, 1, 3, 7 s; the fifth would
    // wait 11 s and is told to come back.
    let roomd = Arc::new(roomd);
    let start = Arc::new(Barrier::new(6));
    let guessers: Vec<_> = (0..5)
        .map(|n| {
            let (roomd, start) = (roomd.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let began = Instant::now();
                let answer =
                    login_from(&roomd, ADMIN_USERNAME, "a wrong password!", source(100 + n));
                (answer, began.elapsed())
            })
        })
        .collect();
    start.wait();
    // Meanwhile the admin at the usual desk is not paced at all: a typo is answered at once
    // (a wrong password, so that the account's pacing goes on for the guessers).
    std::thread::sleep(Duration::from_millis(500));
    let began = Instant::now();
    let typo = login_from(&roomd, ADMIN_USERNAME, "a typo in the password", desk)?;
    let desk_took = began.elapsed();
    assert_eq!(
        typo.status,
        401,
        "admin's typo at the desk: {}",
        typo.text()
    );
    let mut results: Vec<(u16, Duration)> = Vec::new();
    for guesser in guessers {
        let (answer, took) = guesser.join().expect("guesser thread");
        let answer = answer?;
        results.push((answer.status, took));
    }
    results.sort_by_key(|(_, took)| *took);
    eprintln!("paced guesses: {results:?}; admin at the desk took {desk_took:?}");
    let wrong: Vec<&(u16, Duration)> = results.iter().filter(|(s, _)| *s == 401).collect();
    let told_to_wait = results.iter().filter(|(s, _)| *s == 429).count();
    assert_eq!(wrong.len() + told_to_wait, 5, "{results:?}");
    assert!(
        told_to_wait >= 1,
        "some guess must be turned away: {results:?}"
    );
    assert!(
        wrong.len() >= 3,
        "parallel guesses should wait for their turn, not be refused: {results:?}"
    );
    // The k-th checked guess waited for its slot: at least 1 s, 3 s … after the first.
    assert!(
        wrong[wrong.len() - 1].1 >= Duration::from_secs(3),
        "the guesses were not spaced out: {results:?}"
    );
    assert!(
        desk_took < Duration::from_secs(3),
        "the admin at the usual desk was delayed {desk_took:?}"
    );
    // And logs in at once with the right password: no lockout.
    let began = Instant::now();
    let at_desk = login_from(&roomd, ADMIN_USERNAME, ADMIN_PASSWORD, desk)?;
    assert_eq!(at_desk.status, 200, "admin at the desk: {}", at_desk.text());
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    Ok(())
}
