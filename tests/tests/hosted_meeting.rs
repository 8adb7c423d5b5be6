//! A meeting the room hosts, with three guests on the shipped guest page (docs/meetings.md,
//! "Everyone sees everyone") and the room's panel:
//! - every guest decodes the room and both other guests and hears them; the room shows all
//!   three; each page shows its link to the room encrypted as its browser measures it, and
//!   the others encrypted hop by hop through the room;
//! - every page shows the room's microphone muted while it is, and the room's shared content
//!   while it shares;
//! - a guest who mutes is shown muted by the room and the other pages, and not talking;
//! - a raised hand reaches the room, the panel and the other pages;
//! - a chat message reaches everyone and the panel (as text), the panel writes in it, and it
//!   is gone from every page when the meeting ends;
//! - a guest who leaves and comes back is seen again;
//! - a 10 MB document reaches another guest intact, never touching the room's disk;
//! - a moderator (made one by the room) asks a guest to mute, makes a guest the presenter,
//!   locks the meeting, removes a guest and ends it for everyone; the audit log names them.
//!
//! Layout as in meeting_direct: the hosting roomd runs in the test namespace; Chromium (one
//! browser, a context per guest) on the host reaches it through the veth and trusts only the
//! room's certificate key.

use std::time::Duration;

use roomd_tests::hosted::{frames, other, view};
use roomd_tests::{BrowserPeer, HarnessError, Roomd, TestNetwork, hosted, meeting};
use serde_json::{Value, json};

const PIN: &str = "246810";
const GUESTS: [&str; 3] = ["Alice", "Bob", "Carol"];
const STATE_TIMEOUT: Duration = Duration::from_secs(30);
/// Three guests' media starting on a 2-core machine beside the room's own.
const MEDIA_TIMEOUT: Duration = Duration::from_secs(60);
/// About one second of video at 30 fps.
const FRAMES: u64 = 30;

/// Every guest has joined and shows the room's picture and each other guest's, with their voice
/// arriving; pictures have shown more than `beyond` frames (per guest and tile, from `earlier`
/// when given: they move now).
fn everyone_sees_everyone(line: &Value, earlier: Option<&Value>, guests: &[&str]) -> bool {
    let before = |name: &str, of: Option<&str>| {
        let Some(seen) = earlier.and_then(|e| view(e, name)) else {
            return 0;
        };
        match of {
            None => frames(&seen["room"]),
            Some(other_name) => other(seen, other_name).map_or(0, frames),
        }
    };
    guests.iter().all(|name| {
        let Some(seen) = view(line, name) else {
            return false;
        };
        seen["phase"] == "joined"
            && frames(&seen["room"]) > before(name, None) + FRAMES
            && seen["room"]["audio_packets"].as_u64().unwrap_or(0) > 0
            && guests.iter().filter(|o| *o != name).all(|o| {
                other(seen, o).is_some_and(|tile| {
                    frames(tile) > before(name, Some(o)) + FRAMES
                        && tile["audio_packets"].as_u64().unwrap_or(0) > 0
                        && tile["audio_energy"].as_f64().unwrap_or(0.0) > 0.0
                })
            })
    })
}

#[test]
fn three_guests_on_the_guest_page_see_and_hear_each_other_and_the_room() -> Result<(), HarnessError>
{
    let net = TestNetwork::create()?;
    let (host, hosted) = meeting::host_room_in(&net, PIN, STATE_TIMEOUT)?;
    let id = hosted["id"].as_str().unwrap_or_default();
    let join_url = format!("{}/join/{id}", host.base_url());
    let pages = BrowserPeer::guest_pages(&join_url, &GUESTS, PIN, &host.cert_path())?;
    let panel = BrowserPeer::panel(&host.base_url(), &host.admin_token()?)?;
    meet(&host, &pages, &panel).inspect_err(|_| {
        eprintln!("the room's log:\n{}", host.stderr_text());
        if let Ok(meeting) = meeting::status(&host) {
            eprintln!("the room's status.meeting: {meeting:#}");
        }
        for line in pages.lines().iter().rev().take(3).rev() {
            eprintln!("guest pages: {line}");
        }
    })
}

/// The meeting itself, from admission to its end.
fn meet(host: &Roomd, pages: &BrowserPeer, panel: &BrowserPeer) -> Result<(), HarnessError> {
    for name in GUESTS {
        hosted::admit(host, name, STATE_TIMEOUT)?;
    }

    // Each guest decodes the room and the two others, and hears all three; then again, later:
    // the pictures move.
    let first = pages.wait_for("every guest sees and hears everyone", MEDIA_TIMEOUT, |l| {
        l["event"] == "guests" && everyone_sees_everyone(l, None, &GUESTS)
    })?;
    let after = pages.line_count();
    pages.wait_for_after(after, "the pictures keep moving", MEDIA_TIMEOUT, |l| {
        l["event"] == "guests" && everyone_sees_everyone(l, Some(&first), &GUESTS)
    })?;

    // The room shows all three, from each of them.
    let meeting = meeting::status(host)?;
    for name in GUESTS {
        let participant = meeting::participant(&meeting, name)
            .unwrap_or_else(|| panic!("{name} is not in the room's status: {meeting}"));
        let pid = participant["id"].as_str().unwrap_or_default();
        meeting::wait_for_received_video(host, Some(pid), FRAMES, MEDIA_TIMEOUT)?;
    }
    encryption_shown(host, pages)?;

    // The room's microphone: muted on the room, every page shows it muted; and then not.
    for (command, muted) in [
        ("audio.microphones.mute", true),
        ("audio.microphones.unmute", false),
    ] {
        let from = pages.line_count();
        host.command(command, &json!({}))?;
        pages.wait_for_after(
            from,
            &format!("every page shows the room muted: {muted}"),
            STATE_TIMEOUT,
            |l| {
                GUESTS
                    .iter()
                    .all(|name| view(l, name).is_some_and(|v| v["room"]["muted"] == muted))
            },
        )?;
    }

    // The room shares content: every page shows it moving; it stops: the pages take it away.
    host.command("video.content.start", &json!({}))?;
    pages.wait_for_after(
        pages.line_count(),
        "every page shows the room's content",
        MEDIA_TIMEOUT,
        |l| {
            GUESTS
                .iter()
                .all(|name| view(l, name).is_some_and(|v| frames(&v["content"]) > FRAMES))
        },
    )?;
    host.command("video.content.stop", &json!({}))?;
    pages.wait_for_after(
        pages.line_count(),
        "no page shows content",
        STATE_TIMEOUT,
        |l| {
            l["event"] == "guests"
                && GUESTS
                    .iter()
                    .all(|name| view(l, name).is_some_and(|v| v["content"].is_null()))
        },
    )?;

    // Talking and muting: Alice's page shows Bob talking (Chromium's fake microphone beeps);
    // Bob mutes: the room and Alice's page show his microphone off, and him not talking once;
    // he unmutes: both follow.
    pages.wait_for("Alice sees Bob talking", MEDIA_TIMEOUT, |l| {
        view(l, "Alice")
            .and_then(|v| other(v, "Bob"))
            .is_some_and(|bob| bob["talking"] == true)
    })?;
    let before = pages.line_count();
    pages.command(&json!({ "guest": "Bob", "press": "mute" }))?;
    pages.wait_for_after(before, "Bob muted", STATE_TIMEOUT, |l| l["event"] == "done")?;
    // Nothing of his voice is sent: the room shows his microphone off, and so does Alice's page.
    meeting::wait_for(
        host,
        "the room shows Bob's microphone off",
        STATE_TIMEOUT,
        |m| meeting::participant(m, "Bob").is_some_and(|p| p["audio"] == "off"),
    )?;
    pages.wait_for_after(before, "Alice's page shows Bob muted", STATE_TIMEOUT, |l| {
        view(l, "Alice")
            .and_then(|v| other(v, "Bob"))
            .is_some_and(|bob| bob["audio"] == "off")
    })?;
    // The room decides talking after 800 ms of silence; its list follows at once.
    std::thread::sleep(Duration::from_secs(3));
    // At least five seconds and three reports (a busy machine reports more slowly).
    let from = pages.line_count();
    let watched = std::time::Instant::now();
    let quiet = loop {
        std::thread::sleep(Duration::from_millis(500));
        let reports: Vec<Value> = pages.lines()[from..]
            .iter()
            .filter(|l| l["event"] == "guests")
            .cloned()
            .collect();
        if (reports.len() >= 3 && watched.elapsed() >= Duration::from_secs(5))
            || watched.elapsed() > STATE_TIMEOUT
        {
            break reports;
        }
    };
    assert!(
        quiet.len() >= 3,
        "too few reports after the mute: {quiet:?}"
    );
    for line in &quiet {
        let bob = view(line, "Alice").and_then(|v| other(v, "Bob"));
        assert!(
            bob.is_some_and(|b| b["talking"] == false),
            "Alice's page shows Bob talking 3 s and more after he muted: {bob:?}"
        );
    }

    // Bob unmutes: Alice's page shows him talking again.
    let unmuted = pages.line_count();
    pages.command(&json!({ "guest": "Bob", "press": "mute" }))?;
    pages.wait_for_after(
        unmuted,
        "Alice sees Bob talking again",
        MEDIA_TIMEOUT,
        |l| {
            view(l, "Alice")
                .and_then(|v| other(v, "Bob"))
                .is_some_and(|bob| bob["talking"] == true && bob["audio"] == "on")
        },
    )?;
    meeting::wait_for(
        host,
        "the room shows Bob's microphone on",
        STATE_TIMEOUT,
        |m| meeting::participant(m, "Bob").is_some_and(|p| p["audio"] == "on"),
    )?;

    // Carol raises her hand: the room, the panel and Alice's page show it; she lowers it: all
    // follow.
    for raised in [true, false] {
        let from = pages.line_count();
        let panel_from = panel.line_count();
        pages.command(&json!({ "guest": "Carol", "press": "hand" }))?;
        meeting::wait_for(
            host,
            &format!("the room shows Carol's hand raised: {raised}"),
            STATE_TIMEOUT,
            |m| meeting::participant(m, "Carol").is_some_and(|p| p["hand_raised"] == raised),
        )?;
        panel.wait_for_after(
            panel_from,
            &format!("the panel shows Carol's hand raised: {raised}"),
            STATE_TIMEOUT,
            |l| {
                let hands: Vec<bool> = l["participants"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| p["hand"] == true)
                    .collect();
                l["event"] == "panel"
                    && hands.len() == 3
                    && hands.iter().filter(|h| **h).count() == usize::from(raised)
            },
        )?;
        pages.wait_for_after(
            from,
            &format!("Alice's page shows Carol's hand raised: {raised}"),
            STATE_TIMEOUT,
            |l| {
                view(l, "Alice")
                    .and_then(|v| other(v, "Carol"))
                    .is_some_and(|carol| carol["hand"] == raised)
            },
        )?;
    }

    // Chat: what Alice writes reaches Bob's and Carol's pages and the room; what the room
    // writes reaches every page. Markup is shown as the text it is.
    let written = "PIN for the vault: 4711 <b>not bold</b>";
    let shows = |l: &Value, name: &str, from: &str, text: &str| {
        view(l, name).is_some_and(|v| {
            v["chat"].as_array().is_some_and(|chat| {
                chat.iter().any(|m| {
                    m["from"] == from && m["text"].as_str().is_some_and(|t| t.ends_with(text))
                })
            })
        })
    };
    let from = pages.line_count();
    pages.command(&json!({ "guest": "Alice", "chat": written }))?;
    pages.wait_for_after(
        from,
        "Bob and Carol read Alice's message",
        STATE_TIMEOUT,
        |l| {
            ["Bob", "Carol"]
                .iter()
                .all(|name| shows(l, name, "Alice", written))
        },
    )?;
    meeting::wait_for(
        host,
        "the room's chat has Alice's message",
        STATE_TIMEOUT,
        |m| {
            m["chat"].as_array().is_some_and(|chat| {
                chat.iter().any(|c| {
                    c["from"] == "Alice" && c["text"] == written && c["from_room"] == false
                })
            })
        },
    )?;
    panel.wait_for("the panel shows Alice's message", STATE_TIMEOUT, |l| {
        l["chat"].as_array().is_some_and(|chat| {
            chat.iter().any(|m| {
                m["from"] == "Alice" && m["text"].as_str().is_some_and(|t| t.ends_with(written))
            })
        })
    })?;
    // The room's people write on the panel.
    let from = pages.line_count();
    panel.command(&json!({ "fill": "#panel-chat-input", "value": "Coffee is outside." }))?;
    panel.command(&json!({ "tap": "panel-chat-send" }))?;
    pages.wait_for_after(
        from,
        "every page reads the room's message",
        STATE_TIMEOUT,
        |l| {
            GUESTS
                .iter()
                .all(|name| shows(l, name, "Host room", "Coffee is outside."))
        },
    )?;

    // A hostile page: Bob's channel sends a message claiming to be Alice, one too long, one
    // with control characters, messages the room does not know, and a burst of 20 lines. The
    // others see Bob's name on what they get, nothing of the bad ones, and at most 5 lines of
    // the burst (5 in 10 s per guest).
    let mut raw = vec![
        json!({ "type": "chat", "text": "forged", "from": "Alice" }).to_string(),
        json!({ "type": "chat", "text": "x".repeat(501) }).to_string(),
        json!({ "type": "chat", "text": "clear\u{1b}[2J" }).to_string(),
        json!({ "type": "unmute", "participant": "Alice" }).to_string(),
        "not json".to_owned(),
    ];
    raw.extend(
        (0..20).map(|n| json!({ "type": "chat", "text": format!("burst {n}") }).to_string()),
    );
    let from = pages.line_count();
    pages.command(&json!({ "guest": "Bob", "raw": raw }))?;
    pages.wait_for_after(
        from,
        "the burst's first line reaches Carol",
        STATE_TIMEOUT,
        |l| shows(l, "Carol", "Bob", "burst 0"),
    )?;
    std::thread::sleep(Duration::from_secs(2));
    let seen = pages
        .lines()
        .into_iter()
        .rev()
        .find(|l| l["event"] == "guests")
        .unwrap_or_default();
    let carol = view(&seen, "Carol")
        .map(|v| v["chat"].clone())
        .unwrap_or_default();
    let texts: Vec<&str> = carol
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["from"] == "Bob")
        .filter_map(|m| m["text"].as_str())
        .collect();
    let burst = texts.iter().filter(|t| t.contains("burst ")).count();
    assert!(
        burst <= 5,
        "more than 5 of Bob's burst reached Carol: {texts:?}"
    );
    assert!(
        !texts
            .iter()
            .any(|t| t.contains("forged") || t.contains("xxxxx") || t.contains("clear")),
        "a bad message reached Carol: {texts:?}"
    );
    assert!(
        !carol.to_string().contains("forged"),
        "a message claiming to be Alice reached Carol: {carol}"
    );
    let meeting = meeting::status(host)?;
    assert_eq!(
        meeting::participant(&meeting, "Alice").map(|p| p["audio"].clone()),
        Some(json!("on")),
        "an unknown message changed Alice: {meeting}"
    );

    // Carol leaves: the others no longer show her. She comes back: she is seen again.
    pages.command(&json!({ "guest": "Carol", "press": "leave" }))?;
    pages.wait_for_after(
        from,
        "Carol gone from Alice's and Bob's pages",
        STATE_TIMEOUT,
        |l| {
            ["Alice", "Bob"]
                .iter()
                .all(|name| view(l, name).is_some_and(|v| other(v, "Carol").is_none()))
        },
    )?;
    pages.command(&json!({ "guest": "Carol", "join": true }))?;
    hosted::admit(host, "Carol", STATE_TIMEOUT)?;
    let back = pages.line_count();
    pages.wait_for_after(back, "Carol seen and heard again", MEDIA_TIMEOUT, |l| {
        l["event"] == "guests" && everyone_sees_everyone(l, None, &GUESTS)
    })?;

    documents(host, pages)?;
    moderate(host, pages, panel)?;

    // Alice ends the meeting for everyone.
    let from = pages.line_count();
    pages.command(&json!({ "guest": "Alice", "press": "end" }))?;
    pages.wait_for_after(
        from,
        "every page shows the meeting ended",
        STATE_TIMEOUT,
        |l| {
            ["Alice", "Bob"].iter().all(|name| {
                view(l, name).is_some_and(|v| {
                    v["others"].as_array().is_some_and(Vec::is_empty)
                        && v["chat"].as_array().is_some_and(Vec::is_empty)
                        && v["phase"] != "joined"
                })
            })
        },
    )?;
    meeting::wait_for(host, "the room's meeting ended", STATE_TIMEOUT, |m| {
        m["state"] == "idle"
    })?;
    Ok(())
}

/// What each page says of encryption is what is measured: its own link to the room encrypted
/// with the SRTP cipher its browser's DTLS transports report (read by the driver apart from the
/// page), and every other guest encrypted hop by hop, their link in the room's status being
/// DTLS-SRTP; the page says the room decrypts (not end to end).
fn encryption_shown(host: &Roomd, pages: &BrowserPeer) -> Result<(), HarnessError> {
    let line = pages.wait_for_after(
        pages.line_count(),
        "every page shows its link to the room encrypted",
        STATE_TIMEOUT,
        |l| {
            l["event"] == "guests"
                && GUESTS.iter().all(|name| {
                    view(l, name).is_some_and(|v| v["encryption"]["link"] == "encrypted")
                })
        },
    )?;
    let meeting = meeting::status(host)?;
    for name in GUESTS {
        let page = view(&line, name).cloned().unwrap_or_default();
        let cipher = &page["encryption"]["cipher"];
        let from = pages.line_count();
        pages.command(&json!({ "guest": name, "transports": true }))?;
        let read = pages.wait_for_after(
            from,
            "the driver reads the transports",
            STATE_TIMEOUT,
            |l| {
                l["event"] == "done"
                    && l["command"]["guest"] == name
                    && l["command"]["transports"] == true
            },
        )?;
        let transports = read["transports"].as_array().cloned().unwrap_or_default();
        // Every connection connected; every transport of theirs in use (connected) runs the
        // cipher the page names.
        assert!(
            !transports.is_empty()
                && transports.iter().all(|t| t["connection"] == "connected")
                && transports
                    .iter()
                    .filter(|t| t["dtls"] == "connected")
                    .all(|t| &t["cipher"] == cipher)
                && transports.iter().any(|t| t["dtls"] == "connected"),
            "{name}'s page says {cipher}, its transports: {transports:?}"
        );
        for shown in GUESTS.iter().filter(|o| **o != name) {
            let tile = other(&page, shown).cloned().unwrap_or_default();
            assert_eq!(tile["encryption"], "hop-by-hop", "{shown} on {name}'s page");
            let participant = meeting::participant(&meeting, shown)
                .cloned()
                .unwrap_or_default();
            assert_eq!(participant["encryption"], "dtls-srtp", "{meeting}");
        }
    }
    Ok(())
}

/// A 10 MB document from Alice reaches Bob (who accepts it first) with the SHA-256 Alice's page
/// computed; the room passes it on in memory: nothing of it reaches the room's disk (counted by
/// the kernel for disk-backed files), its state or its temporary folder (which may be a tmpfs,
/// whose writes the kernel does not count).
fn documents(host: &Roomd, pages: &BrowserPeer) -> Result<(), HarnessError> {
    const SIZE: u64 = 10 * 1024 * 1024;
    let state_before = [files_under(host.state_dir()), files_under(&host.temp_dir())].concat();
    let written_before = disk_writes(host);
    let from = pages.line_count();
    pages.command(&json!({ "guest": "Alice", "offer_file": { "to": "Bob", "bytes": SIZE } }))?;
    let offered =
        pages.wait_for_after(from, "Alice's page offers the file", STATE_TIMEOUT, |l| {
            l["event"] == "done" && l["command"]["offer_file"].is_object()
        })?;
    let sha256 = offered["sha256"].as_str().unwrap_or_default().to_owned();
    let transfer = |l: &Value, name: &str| -> Option<Value> {
        view(l, name)?["transfers"].as_array()?.last().cloned()
    };
    pages.wait_for_after(
        from,
        "Bob's page shows the offer with its SHA-256",
        STATE_TIMEOUT,
        |l| {
            transfer(l, "Bob").is_some_and(|t| {
                t["state"] == "offered" && t["sha256"] == sha256.as_str() && t["peer"] == "Alice"
            })
        },
    )?;
    // Nothing moves before Bob accepts.
    let last = pages
        .lines()
        .into_iter()
        .rev()
        .find(|l| l["event"] == "guests");
    assert_eq!(
        last.and_then(|l| transfer(&l, "Alice"))
            .map(|t| t["bytes"].clone()),
        Some(json!(0))
    );
    let accepted = pages.line_count();
    pages.command(&json!({ "guest": "Bob", "press": "accept-file" }))?;
    pages.wait_for_after(
        accepted,
        "the file reaches Bob intact",
        MEDIA_TIMEOUT,
        |l| {
            transfer(l, "Bob").is_some_and(|t| {
                t["state"] == "done" && t["received"] == sha256.as_str() && t["bytes"] == SIZE
            }) && transfer(l, "Alice").is_some_and(|t| t["state"] == "done")
        },
    )?;
    let written = disk_writes(host).saturating_sub(written_before);
    assert!(
        written < SIZE / 10,
        "roomd wrote {written} bytes to storage while passing on a {SIZE}-byte document"
    );
    let state_after = [files_under(host.state_dir()), files_under(&host.temp_dir())].concat();
    for (path, size) in &state_after {
        let before = state_before
            .iter()
            .find(|(p, _)| p == path)
            .map_or(0, |(_, s)| *s);
        assert!(
            size.saturating_sub(before) < SIZE / 10,
            "{} grew by {} bytes during the transfer",
            path.display(),
            size - before
        );
    }
    Ok(())
}

/// `holder`'s page shows them holding `role`, and `seen_by`'s page shows it on their tile.
fn holds_role(line: &Value, holder: &str, role: &str, seen_by: &str) -> bool {
    view(line, holder).is_some_and(|v| v["roles"][role] == true)
        && view(line, seen_by)
            .and_then(|v| other(v, holder))
            .is_some_and(|tile| tile[role] == true)
}

/// Every file under `dir`, with its size.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            match entry.metadata() {
                Ok(m) if m.is_dir() => todo.push(path),
                Ok(m) => files.push((path, m.len())),
                Err(_) => {}
            }
        }
    }
    files
}

/// Bytes roomd has caused to be written to storage (`write_bytes` of /proc/<pid>/io), which
/// counts pages as they are dirtied, wherever the file is.
fn disk_writes(host: &Roomd) -> u64 {
    let io = host
        .pid()
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/io")).ok())
        .unwrap_or_default();
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no write_bytes in roomd's /proc/<pid>/io: {io:?}"))
}

/// Roles: the room makes Alice a moderator; on her page she asks Bob to mute (he does, on his
/// own page), makes him the presenter (his window reaches the others and the room display;
/// Carol's, not presenting, reaches nobody) and takes it back, locks the meeting (a newcomer
/// is refused) and removes Carol (her page says so, and the others no longer show her). The
/// audit log names Alice's requests.
fn moderate(host: &Roomd, pages: &BrowserPeer, panel: &BrowserPeer) -> Result<(), HarnessError> {
    let meeting = meeting::status(host)?;
    let id_of = |name: &str| {
        meeting::participant(&meeting, name)
            .and_then(|p| p["id"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("{name} is not in the room's status: {meeting}"))
    };
    let (alice, bob) = (id_of("Alice"), id_of("Bob"));
    let from = pages.line_count();
    // On the panel, as the room's people do it.
    panel.command(&json!({ "tap": "moderator", "participant": alice }))?;
    panel.wait_for("the panel shows Alice moderating", STATE_TIMEOUT, |l| {
        l["participants"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["id"] == alice.as_str() && p["moderator"] == true)
    })?;
    pages.wait_for_after(
        from,
        "Alice moderates, and Bob sees it",
        STATE_TIMEOUT,
        |l| holds_role(l, "Alice", "moderator", "Bob"),
    )?;

    // A request to mute: Bob's page asks him; nothing changes until he answers.
    let from = pages.line_count();
    pages.command(&json!({ "guest": "Alice", "moderate": "ask-mute", "on": "Bob" }))?;
    pages.wait_for_after(from, "Bob's page asks him to mute", STATE_TIMEOUT, |l| {
        view(l, "Bob").is_some_and(|v| {
            v["mute_request"]
                .as_str()
                .is_some_and(|t| t.contains("Alice"))
                && v["muted"] == false
        })
    })?;
    pages.command(&json!({ "guest": "Bob", "press": "accept-mute" }))?;
    meeting::wait_for(
        host,
        "the room shows Bob's microphone off",
        STATE_TIMEOUT,
        |m| meeting::participant(m, "Bob").is_some_and(|p| p["audio"] == "off"),
    )?;

    // Carol is no presenter: what she shares on her window line (not through the page, which
    // offers no button) is neither drawn by the room nor forwarded.
    let before = pages.line_count();
    pages.command(&json!({ "guest": "Carol", "force_share": true }))?;
    pages.wait_for_after(
        before,
        "Carol's page sends on its window line",
        STATE_TIMEOUT,
        |l| l["event"] == "done" && l["command"]["force_share"] == true,
    )?;
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(meeting::status(host)?["shared_window"], Value::Null);
    let seen = pages.line_count();
    pages.wait_for_after(seen, "a report after Carol's attempt", STATE_TIMEOUT, |l| {
        l["event"] == "guests"
    })?;
    let last = pages
        .lines()
        .into_iter()
        .rev()
        .find(|l| l["event"] == "guests");
    for name in ["Alice", "Bob"] {
        let content = last
            .as_ref()
            .and_then(|l| view(l, name))
            .map(|v| v["content"].clone());
        assert_eq!(
            content,
            Some(Value::Null),
            "{name}'s page shows a window Carol was refused"
        );
    }

    // The presenter role, shown to the others and on the panel.
    let from = pages.line_count();
    pages.command(&json!({ "guest": "Alice", "moderate": "make-presenter", "on": "Bob" }))?;
    pages.wait_for_after(
        from,
        "Bob presents, on his page and Carol's",
        STATE_TIMEOUT,
        |l| holds_role(l, "Bob", "presenter", "Carol"),
    )?;
    assert_eq!(
        meeting::status(host)?["moderation"]["presenter"],
        json!(bob)
    );

    // Bob shares a window: the others decode it, the room draws it; Carol's stays refused.
    pages.command(&json!({ "guest": "Bob", "press": "share" }))?;
    pages.wait_for_after(
        from,
        "Alice and Carol see Bob's window moving",
        MEDIA_TIMEOUT,
        |l| {
            ["Alice", "Carol"].iter().all(|name| {
                view(l, name).is_some_and(|v| {
                    v["content"]["from"] == "Bob" && frames(&v["content"]) > FRAMES
                })
            })
        },
    )?;
    let drawn = meeting::wait_for(host, "the room draws Bob's window", MEDIA_TIMEOUT, |m| {
        m["shared_window"]["participant"] == bob.as_str()
            && m["shared_window"]["frames"].as_u64().unwrap_or(0) > FRAMES
    })?;
    assert_eq!(drawn["shared_window"]["name"], "Bob");
    // The role taken back ends the share everywhere.
    let from = pages.line_count();
    pages.command(&json!({ "guest": "Alice", "moderate": "take-presenter", "on": "Bob" }))?;
    meeting::wait_for(
        host,
        "the room no longer draws Bob's window",
        STATE_TIMEOUT,
        |m| m["shared_window"].is_null() && m["moderation"]["presenter"].is_null(),
    )?;
    pages.wait_for_after(from, "no page shows Bob's window", STATE_TIMEOUT, |l| {
        view(l, "Bob").is_some_and(|v| v["sharing"] == false)
            && ["Alice", "Carol"]
                .iter()
                .all(|name| view(l, name).is_some_and(|v| v["content"].is_null()))
    })?;

    // Locked: a newcomer is refused, and told why.
    let from = pages.line_count();
    pages.command(&json!({ "guest": "Alice", "press": "lock" }))?;
    pages.wait_for_after(from, "Alice's page shows the lock", STATE_TIMEOUT, |l| {
        view(l, "Alice").is_some_and(|v| v["locked"] == true)
    })?;
    panel.wait_for("the panel shows the lock", STATE_TIMEOUT, |l| {
        l["locked"] == true
    })?;
    let meeting_id = meeting::status(host)?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let refused = host
        .request("POST", &format!("/api/v1/join/{meeting_id}/guests"))
        .json(&json!({ "name": "Dave", "pin": PIN }))
        .send()?;
    assert_eq!(
        refused.status,
        403,
        "a newcomer to a locked meeting: {}",
        refused.text()
    );
    assert!(refused.text().contains("locked"), "{}", refused.text());

    // Removed: Carol's page says so, the others no longer show her, the room no longer lists her.
    let from = pages.line_count();
    pages.command(&json!({ "guest": "Alice", "moderate": "remove", "on": "Carol" }))?;
    pages.wait_for_after(
        from,
        "Carol removed, and gone from the others' pages",
        STATE_TIMEOUT,
        |l| {
            view(l, "Carol")
                .is_some_and(|v| v["phase"].as_str().is_some_and(|p| p.contains("removed")))
                && ["Alice", "Bob"]
                    .iter()
                    .all(|name| view(l, name).is_some_and(|v| other(v, "Carol").is_none()))
        },
    )?;
    assert!(meeting::participant(&meeting::status(host)?, "Carol").is_none());

    // The audit log names who asked what.
    let audit = host
        .get("/api/v1/audit")
        .bearer(&host.admin_token()?)
        .send()?
        .expect_status(200, "GET /api/v1/audit")?
        .json()?;
    let moderation: Vec<&Value> = audit
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            e["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/moderation"))
        })
        .collect();
    for said in ["ask", "presenter", "lock the meeting", "remove"] {
        assert!(
            moderation.iter().any(|e| e["status"] == 204
                && e["actor"].as_str().is_some_and(|a| a.contains(&alice))
                && e["detail"].as_str().is_some_and(|d| d.contains(said))),
            "no audit record of Alice's {said:?}: {moderation:#?}"
        );
    }
    Ok(())
}
