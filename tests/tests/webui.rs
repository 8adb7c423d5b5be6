//! The web UI inside a real roomd on the simulated profile: pages and assets are served with
//! their content types and strict security headers, and a browser test (Debian's Chromium,
//! driven by playwright-core in `webui/e2e/webui.mjs`) claims the room, logs in, pairs a touch
//! panel, mutes and sees the room display change, joins a hosted meeting as a guest and leaves,
//! checks a config form shows the server's message, and runs axe-core on every page.
//! Screenshots land in `target/test-artifacts/webui/`.

use std::path::PathBuf;
use std::process::Command;

use roomd_tests::{HarnessError, Roomd};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

const CSP_MUST_HAVE: [&str; 4] = [
    "default-src 'none'",
    "script-src 'self'",
    "connect-src 'self'",
    "frame-ancestors 'none'",
];

#[test]
fn pages_and_assets_are_served_with_strict_headers() -> Result<(), HarnessError> {
    let roomd = Roomd::start("")?;
    // The device's own screen (loopback) goes to the panel.
    let root = roomd.get("/").send()?.expect_status(302, "GET /")?;
    assert_eq!(root.header("location"), Some("/panel"));

    let mut asset_path = None;
    for path in ["/panel", "/admin", "/join/m-123"] {
        let page = roomd.get(path).send()?.expect_status(200, path)?;
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{path}"
        );
        let csp = page.header("content-security-policy").unwrap_or_default();
        for part in CSP_MUST_HAVE {
            assert!(csp.contains(part), "{path}: CSP {csp:?} lacks {part:?}");
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("http"),
            "{path}: CSP {csp:?} allows inline code or other origins"
        );
        assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(page.header("cache-control"), Some("no-cache"), "{path}");
        let html = page.text();
        assert!(
            !html.contains("<script>") && !html.contains("http://") && !html.contains("https://"),
            "{path}: the page has inline scripts or names another origin:\n{html}"
        );
        asset_path = html
            .split("src=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_owned);
    }
    let asset_path = asset_path.expect("the page loads a script");
    assert!(asset_path.starts_with("/assets/"), "{asset_path}");
    let asset = roomd
        .get(&asset_path)
        .send()?
        .expect_status(200, "the page's script")?;
    assert_eq!(
        asset.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        asset.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    roomd
        .get("/assets/missing.js")
        .send()?
        .expect_status(404, "a missing asset")?;
    // A stale session cookie does not keep the login page from loading.
    roomd
        .get("/admin")
        .header("Cookie", "__Host-roomd_session=stale")
        .send()?
        .expect_status(200, "/admin with a stale cookie")?;
    // Nor does it stop a browser from logging in again (it cannot delete an HttpOnly cookie),
    // while a bad bearer token is still refused on public routes.
    let login = roomd
        .request("POST", "/api/v1/session")
        .header("Cookie", "__Host-roomd_session=stale")
        .json(&serde_json::json!({"username": "nobody", "password": "wrong password here"}))
        .send()?;
    assert_eq!(
        login.error_code().as_deref(),
        Some("conflict"),
        "a login with a stale cookie reaches the login handler (unclaimed: 409)"
    );
    roomd
        .get("/api/v1/health")
        .bearer("rmd_revoked")
        .send()?
        .expect_status(401, "a bad token on a public route")?;
    // Pages are not API operations: the contract leaves them out.
    let contract = roomd
        .get("/api/v1/openapi.json")
        .send()?
        .expect_status(200, "openapi.json")?
        .json()?;
    assert!(contract["paths"].get("/panel").is_none());
    Ok(())
}

#[test]
fn the_browser_flow_passes() -> Result<(), HarnessError> {
    let webui = workspace().join("webui");
    let script = webui.join("e2e/webui.mjs");
    assert!(
        webui.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `make webui` (npm ci in webui/) first"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is not installed (make deps)"
    );
    let roomd = Roomd::start("")?;
    let artifacts = workspace().join("target/test-artifacts/webui");
    let output = Command::new("node")
        .arg(&script)
        .current_dir(&webui)
        .env("ROOMD_URL", roomd.base_url())
        .env("STATE_DIR", roomd.state_dir())
        .env("ARTIFACTS", &artifacts)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node (make deps installs nodejs): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    if stdout.contains("SKIPPED") {
        eprintln!("NOTE: part of the browser flow was skipped; see SKIPPED above");
    }
    assert!(
        output.status.success(),
        "the browser flow failed ({}); screenshots in {}; roomd said:\n{}",
        output.status,
        artifacts.display(),
        roomd.stderr_text()
    );
    Ok(())
}
