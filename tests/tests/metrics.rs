//! `GET /api/v1/metrics` against the real roomd: who may read it (a metrics token reads that and
//! nothing else), that `promtool check metrics` accepts what it serves, that the figures follow
//! the room, and that a real Prometheus server (Debian `prometheus`) scrapes it over HTTPS with
//! a bearer token and with a client certificate.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use roomd_tests::{ApiResponse, HarnessError, Roomd, TestCa, free_port};
use serde_json::{Value, json};

const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The value of the series written exactly as `series` (name and labels as roomd writes them).
fn value(body: &str, series: &str) -> Option<f64> {
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

fn scrape(roomd: &Roomd, token: &str) -> Result<ApiResponse, HarnessError> {
    roomd
        .get("/api/v1/metrics")
        .bearer(token)
        .send()?
        .expect_status(200, "GET /api/v1/metrics")
}

/// Scrapes until `series` has `expected` (the status follows commands asynchronously).
fn wait_for(roomd: &Roomd, token: &str, series: &str, expected: f64) -> Result<(), HarnessError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = scrape(roomd, token)?.text();
        let now = value(&body, series);
        if now == Some(expected) {
            return Ok(());
        }
        assert!(
            Instant::now() < deadline,
            "{series} stayed {now:?}, expected {expected}:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every sample line is `name{labels} value` with a name in roomd's namespace and a number.
fn assert_parseable(body: &str) {
    let mut samples = 0;
    for line in body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, number) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(series.starts_with("roomd_"), "outside roomd_: {line}");
        let name_end = series.find('{').unwrap_or(series.len());
        assert!(
            series[..name_end]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{line}"
        );
        assert!(
            number.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&number),
            "{line}"
        );
        samples += 1;
    }
    assert!(samples > 30, "only {samples} samples:\n{body}");
}

fn promtool_check(body: &str) {
    use std::io::Write;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is installed");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn metrics_token_reads_metrics_and_nothing_else() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    let metrics = roomd.token_for("metrics")?;

    let response = scrape(&roomd, &metrics)?;
    assert_eq!(response.header("content-type"), Some(TEXT_FORMAT));
    let body = response.text();
    assert_parseable(&body);
    promtool_check(&body);
    for series in [
        "roomd_meeting_state{state=\"idle\"}",
        "roomd_media_engine_rebuilds_total",
        "roomd_process_resident_memory_bytes",
        "roomd_process_cpu_seconds_total",
        "roomd_process_open_fds",
        "roomd_process_start_time_seconds",
        "roomd_uptime_seconds",
        "roomd_update_state{state=\"idle\"}",
    ] {
        assert!(value(&body, series).is_some(), "no {series}:\n{body}");
    }
    assert_eq!(
        value(&body, "roomd_meeting_state{state=\"idle\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(&body, "roomd_meeting_state{state=\"connected\"}"),
        Some(0.0)
    );
    assert!(
        body.contains(&format!(
            "roomd_build_info{{version=\"{}\"",
            env!("CARGO_PKG_VERSION")
        )),
        "{body}"
    );
    assert!(value(&body, "roomd_process_resident_memory_bytes").unwrap() > 1e6);

    // What a scrape costs: the time to the answer through the harness client, and its size.
    let mut times = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        scrape(&roomd, &metrics)?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let samples = body.lines().filter(|l| !l.starts_with('#')).count();
    eprintln!(
        "TIMING metrics scrape: p50 {:.1} ms, max {:.1} ms over 20; {} bytes, {samples} samples",
        times[10],
        times[19],
        body.len()
    );

    // OpenMetrics for a scraper that asks for it (Prometheus does).
    let open = roomd
        .get("/api/v1/metrics")
        .bearer(&metrics)
        .header(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        )
        .send()?
        .expect_status(200, "OpenMetrics")?;
    assert_eq!(
        open.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(open.text().ends_with("# EOF\n"), "{}", open.text());

    // Nothing else: not the status, the events, its own session, a command, the config.
    for (method, path) in [
        ("GET", "/api/v1/status"),
        ("GET", "/api/v1/status/audio/volume"),
        ("GET", "/api/v1/session"),
        ("GET", "/api/v1/config"),
        ("GET", "/api/v1/calls"),
        ("GET", "/api/v1/tokens"),
    ] {
        let status = roomd.request(method, path).bearer(&metrics).send()?.status;
        assert_eq!(status, 403, "{method} {path} as metrics");
    }
    let command = roomd
        .request("POST", "/api/v1/commands/audio.volume.set")
        .bearer(&metrics)
        .json(&json!({"level": 10}))
        .send()?;
    assert_eq!(
        command.status,
        403,
        "a command as metrics: {}",
        command.text()
    );
    match roomd.websocket_with_token(&metrics) {
        Err(HarnessError::WebSocketRefused { status: 403, .. }) => {}
        Err(other) => panic!("events as metrics: {other}"),
        Ok(_) => panic!("events as metrics: opened"),
    }

    // Other roles may not read metrics; the admin may.
    for role in ["room-control", "user", "integrator", "audit"] {
        let token = roomd.token_for(role)?;
        let status = roomd.get("/api/v1/metrics").bearer(&token).send()?.status;
        assert_eq!(status, 403, "metrics as {role}");
    }
    scrape(&roomd, &roomd.admin_token()?)?;
    let anonymous = roomd.get("/api/v1/metrics").send()?.status;
    assert_eq!(anonymous, 401);

    // The role is for machines: no user gets it.
    let refused = roomd
        .request("POST", "/api/v1/users")
        .bearer(&roomd.admin_token()?)
        .json(&json!({"username": "scraper", "password": "a long password 1", "role": "metrics"}))
        .send()?;
    assert_eq!(refused.status, 422, "{}", refused.text());

    // The refusals above were counted by route pattern, not by raw path.
    let body = scrape(&roomd, &metrics)?.text();
    let refused_status = value(
        &body,
        "roomd_api_requests_total{route=\"/api/v1/status/{path:.*}\",method=\"GET\",status_class=\"4xx\"}",
    );
    assert_eq!(refused_status, Some(1.0), "{body}");
    assert!(
        !body.contains("audio/volume"),
        "raw paths in labels:\n{body}"
    );
    assert!(
        body.contains("roomd_api_request_duration_seconds_bucket{"),
        "{body}"
    );
    Ok(())
}

#[test]
fn metrics_follow_the_room() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    let metrics = roomd.token_for("metrics")?;

    roomd.command("audio.volume.set", &json!({"level": 35}))?;
    wait_for(&roomd, &metrics, "roomd_audio_volume_ratio", 0.35)?;
    roomd.command("audio.microphones.mute", &json!({}))?;
    wait_for(&roomd, &metrics, "roomd_audio_microphones_muted", 1.0)?;
    roomd.command("standby.activate", &json!({}))?;
    wait_for(&roomd, &metrics, "roomd_standby", 1.0)?;
    roomd.command("standby.deactivate", &json!({}))?;
    wait_for(&roomd, &metrics, "roomd_standby", 0.0)?;
    Ok(())
}

/// A Prometheus server in a temporary directory, stopped on drop.
struct Prometheus {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(dir: &Path, config: &str) -> Prometheus {
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let check = Command::new("promtool")
            .args(["check", "config"])
            .arg(&config_path)
            .output()
            .expect("promtool");
        assert!(
            check.status.success(),
            "{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let port = free_port().unwrap();
        let log = dir.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("prometheus (Debian package prometheus) is installed");
        Prometheus { child, port, log }
    }

    /// The result vector of an instant query; empty while Prometheus is not up yet.
    fn query(&self, query: &str) -> Vec<Value> {
        let url = format!(
            "http://127.0.0.1:{}/api/v1/query?query={}",
            self.port,
            percent_encode(query)
        );
        let Ok(mut response) = ureq::get(&url).call() else {
            return Vec::new();
        };
        let Ok(body) = response.body_mut().read_to_string() else {
            return Vec::new();
        };
        let answer: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        answer["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits (bounded) until `query` returns a sample whose value is `expected` (any value for
    /// `None`); the samples it saw last otherwise.
    fn wait_for(&self, query: &str, expected: Option<&str>) -> Result<Value, String> {
        let deadline = Instant::now() + Duration::from_secs(45);
        let mut last = Vec::new();
        while Instant::now() < deadline {
            last = self.query(query);
            if let Some(sample) = last
                .iter()
                .find(|s| expected.is_none_or(|e| s["value"][1].as_str() == Some(e)))
            {
                return Ok(sample.clone());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(format!(
            "{query}: {last:?} after 45 s; prometheus log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        ))
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn prometheus_scrapes_roomd_with_a_token_and_with_a_client_certificate() -> Result<(), HarnessError>
{
    let dir = tempfile::tempdir().expect("tempdir");
    let monitoring = TestCa::new("Monitoring CA")?;
    let ca_path = dir.path().join("monitoring-ca.pem");
    std::fs::write(&ca_path, monitoring.cert_pem()).expect("write CA");
    let roomd = Roomd::start_claimed(&format!(
        "[api]\nclient_ca = \"{}\"\nclient_role = \"metrics\"\n",
        ca_path.display()
    ))?;
    let token_path = dir.path().join("token");
    std::fs::write(&token_path, roomd.token_for("metrics")?).unwrap();
    let client = monitoring.issue_client("prometheus-1")?;
    let cert_path = dir.path().join("client.pem");
    let key_path = dir.path().join("client-key.pem");
    std::fs::write(&cert_path, client.cert_pem).unwrap();
    std::fs::write(&key_path, client.key_pem).unwrap();
    assert_eq!(roomd.address(), Ipv4Addr::LOCALHOST);
    let target = format!("127.0.0.1:{}", roomd.port());
    let device_ca = roomd.cert_path();
    let config = format!(
        r#"global:
  scrape_interval: 2s
  scrape_timeout: 2s
scrape_configs:
  - job_name: roomd
    scheme: https
    metrics_path: /api/v1/metrics
    authorization:
      type: Bearer
      credentials_file: {token}
    tls_config:
      ca_file: {device_ca}
    static_configs:
      - targets: ["{target}"]
  - job_name: roomd_mtls
    scheme: https
    metrics_path: /api/v1/metrics
    tls_config:
      ca_file: {device_ca}
      cert_file: {cert}
      key_file: {key}
    static_configs:
      - targets: ["{target}"]
"#,
        token = token_path.display(),
        device_ca = device_ca.display(),
        cert = cert_path.display(),
        key = key_path.display(),
    );
    let prometheus = Prometheus::start(dir.path(), &config);
    let started = Instant::now();
    for job in ["roomd", "roomd_mtls"] {
        let up = prometheus
            .wait_for(&format!("up{{job=\"{job}\"}}"), Some("1"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(up["metric"]["instance"], target.as_str(), "{up}");
        let build = prometheus
            .wait_for(&format!("roomd_build_info{{job=\"{job}\"}}"), Some("1"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            build["metric"]["version"],
            env!("CARGO_PKG_VERSION"),
            "{build}"
        );
    }
    // Stored as the types roomd declared: the counters' rate works.
    prometheus
        .wait_for(
            "sum(roomd_api_requests_total{job=\"roomd\",route=\"/api/v1/metrics\"}) > 0",
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "TIMING prometheus: both jobs up and queried after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
