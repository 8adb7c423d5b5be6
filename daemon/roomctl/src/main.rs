//! roomctl: command-line client for roomd's local HTTPS API.
//!
//! Prints results as pretty JSON on stdout. On an API error it prints the server's message on
//! stderr and exits 1; usage errors exit 2. The token is never printed; pass it through
//! `ROOMCTL_TOKEN` so it stays out of the process list.

mod fleet;
mod provision;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Parser, Subcommand};
use serde_json::{Map, Value};
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

#[derive(Parser)]
#[command(
    name = "roomctl",
    version,
    about = "Command-line client for roomd's HTTPS API"
)]
struct Cli {
    /// Base URL of roomd's API.
    #[arg(long, env = "ROOMCTL_URL", default_value = "https://127.0.0.1:8443")]
    url: String,
    /// Bearer token (prefer the environment variable: arguments show in `ps`); needed by every
    /// action but `fleet`.
    #[arg(long, env = "ROOMCTL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM certificate to trust instead of the public web roots, e.g. the device's self-signed
    /// `<state_dir>/tls/cert.pem`.
    #[arg(long, env = "ROOMCTL_CACERT")]
    cacert: Option<PathBuf>,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Shows the status tree, or the subtree at PATH (e.g. `audio/volume` or `audio.volume`).
    Status { path: Option<String> },
    /// Reads or changes the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// The device identity and attestation (see docs/identity.md).
    Identity {
        #[command(subcommand)]
        action: IdentityAction,
    },
    /// Runs a command, e.g. `command audio.volume.set '{"level":30}'`.
    Command {
        name: String,
        /// Arguments as a JSON object; `{}` when left out.
        arguments: Option<String>,
    },
    /// Signing keys and signed provisioning bundles (docs/provisioning.md); offline.
    Provision {
        #[command(subcommand)]
        action: ProvisionAction,
    },
    /// The fleet through its MQTT 5 broker (docs/fleet.md), with a client certificate.
    Fleet {
        /// The broker, `mqtts://host[:port]`.
        #[arg(long, env = "ROOMCTL_FLEET_BROKER")]
        broker: String,
        /// PEM file of the CA(s) that issued the broker's certificate.
        #[arg(long, env = "ROOMCTL_FLEET_CA")]
        ca: PathBuf,
        /// PEM file of the fleet manager's certificate (its CN is its user name at the broker).
        #[arg(long, env = "ROOMCTL_FLEET_CERT")]
        cert: PathBuf,
        /// PEM file of its private key.
        #[arg(long, env = "ROOMCTL_FLEET_KEY")]
        key: PathBuf,
        #[command(subcommand)]
        action: FleetAction,
    },
}

#[derive(Subcommand)]
enum ProvisionAction {
    /// Makes an Ed25519 signing key (PKCS#8 PEM, mode 0600) and its public key (PEM) for
    /// `provisioning.trust_key`.
    Keygen {
        /// Where the private key goes (must not exist).
        #[arg(long)]
        key: PathBuf,
        /// Where the public key goes (must not exist).
        #[arg(long)]
        public: PathBuf,
    },
    /// Signs a payload (JSON) into a bundle; the key is PKCS#8 PEM, Ed25519 or ECDSA P-256.
    Sign {
        /// The private key.
        #[arg(long)]
        key: PathBuf,
        /// The payload file.
        #[arg(long)]
        payload: PathBuf,
        /// Where the bundle goes; standard output when left out.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum FleetAction {
    /// Lists every room the broker holds a retained presence or status for: room, name,
    /// version, health, in_meeting, online, last_seen.
    List {
        #[command(flatten)]
        select: FleetSelect,
        /// Output: json (default), table, or csv (RFC 4180).
        #[arg(long, value_enum, default_value_t = fleet::Format::Json)]
        format: fleet::Format,
    },
    /// Runs a command on many rooms, e.g. `fleet command audio.volume.set '{"level":30}'`.
    Command {
        name: String,
        /// Arguments as a JSON object; `{}` when left out.
        arguments: Option<String>,
        #[command(flatten)]
        target: FleetTarget,
    },
    /// Applies a configuration merge patch (JSON object) to many rooms.
    ConfigPatch {
        patch: String,
        #[command(flatten)]
        target: FleetTarget,
    },
    /// Rolls a firmware update out in waves: each room downloads the bundle from URL and
    /// installs it; the first wave with a failed or unhealthy room stops the rollout (exit 1).
    Update {
        /// The bundle's https URL (from a server in each room's meeting.allowed_servers).
        #[arg(long)]
        url: String,
        /// How far each wave goes, counted from the start: rooms or a share, e.g. 1,10%,100%.
        #[arg(long, default_value = "100%")]
        waves: fleet::Waves,
        /// Also run update.reboot, and wait until each room is back on the new version with
        /// its slot marked good.
        #[arg(long)]
        reboot: bool,
        /// How long one wave may take for its replies (and, with --reboot, for the rooms to
        /// come back), in seconds.
        #[arg(long, default_value_t = 900)]
        wave_timeout: u64,
        /// Only print the waves; send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Update rooms in a meeting too (they are skipped otherwise).
        #[arg(long)]
        include_in_meeting: bool,
        /// Output: table (default), json, or csv.
        #[arg(long, value_enum, default_value_t = fleet::Format::Table)]
        format: fleet::Format,
        #[command(flatten)]
        select: FleetSelect,
    },
}

/// Which rooms: shared by every fleet action.
#[derive(clap::Args)]
struct FleetSelect {
    /// A room id; repeat for more. Without any, every room (every online room for actions).
    #[arg(long = "room", value_name = "ID")]
    room: Vec<String>,
    /// Room ids, comma-separated (the same as repeating --room).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    rooms: Vec<String>,
    /// Only rooms whose inventory field matches: KEY=VALUE, KEY!=VALUE, or KEY~=PATTERN (a
    /// case-insensitive glob with * and ?, a substring without them), e.g. version=0.1.0,
    /// online=true, in_meeting=false, health=ok, "name~=Floor 3". Repeat: all must match.
    #[arg(long = "match", value_name = "KEY=VALUE")]
    matches: Vec<fleet::Filter>,
    /// Stop collecting the rooms' retained state after this many milliseconds without news.
    #[arg(long, default_value_t = 1000)]
    quiet_ms: u64,
}

impl FleetSelect {
    fn selection(self) -> fleet::Selection {
        let mut rooms = self.room;
        for id in self.rooms {
            if !rooms.contains(&id) {
                rooms.push(id);
            }
        }
        fleet::Selection {
            rooms,
            filters: self.matches,
            quiet: Duration::from_millis(self.quiet_ms),
        }
    }
}

#[derive(clap::Args)]
struct FleetTarget {
    #[command(flatten)]
    select: FleetSelect,
    /// Only print which rooms would get which request.
    #[arg(long)]
    dry_run: bool,
    /// How long to wait for the replies, in seconds.
    #[arg(long, default_value_t = 15)]
    timeout_s: u64,
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Shows the whole configuration, or the value of a dotted KEY (e.g. `audio.default_volume`).
    Get { key: Option<String> },
    /// Sets a dotted KEY to VALUE; VALUE is read as JSON when it parses, else as a string.
    Set { key: String, value: String },
}

#[derive(Subcommand)]
enum IdentityAction {
    /// Checks the device end to end: its EK certificate chains to a CA in EK_CA, its
    /// attestation key is in that TPM (credential activation), and a quote over PCRs 0-7 and 11
    /// made for a fresh nonce is signed by that key and matches the PCR values it reports.
    /// Exits 1 naming the first check that fails.
    Verify {
        /// PEM file with the TPM manufacturer's CA certificates (root and intermediates) trusted
        /// for EK certificates.
        #[arg(long, value_name = "FILE")]
        ek_ca: PathBuf,
        /// The PCR digest (hex SHA-256 over PCRs 0-7 and 11) the device must have booted with.
        #[arg(long, value_name = "HEX")]
        pcr_digest: Option<String>,
    },
}

/// A refusal from roomd, carrying the message it wrote for a person.
#[derive(Debug, thiserror::Error)]
#[error("{message} (HTTP {status} {code})")]
struct ApiError {
    status: u16,
    code: String,
    message: String,
}

/// Bad input on the command line that clap cannot see (e.g. arguments that are not JSON).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("roomctl: {error:#}");
            if error.is::<UsageError>() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Action::Fleet {
        broker,
        ca,
        cert,
        key,
        action,
    } = cli.action
    {
        return run_fleet(
            fleet::Broker {
                url: broker,
                ca,
                cert,
                key,
            },
            action,
        );
    }
    if let Action::Provision { action } = cli.action {
        return run_provision(action);
    }
    let token = cli
        .token
        .ok_or_else(|| UsageError("a token is needed: set ROOMCTL_TOKEN (or --token)".into()))?;
    let api = Api::new(&cli.url, token, cli.cacert.as_deref())?;
    let output = match cli.action {
        Action::Status { path } => match path {
            Some(path) => api.call("GET", &format!("/status/{}", encode_path(&path)), None)?,
            None => api.call("GET", "/status", None)?,
        },
        Action::Config {
            action: ConfigAction::Get { key },
        } => {
            let config = api.call("GET", "/config", None)?;
            match key {
                Some(key) => value_at(&config, &key)
                    .cloned()
                    .ok_or_else(|| anyhow!("the configuration has no key {key:?}"))?,
                None => config,
            }
        }
        Action::Config {
            action: ConfigAction::Set { key, value },
        } => {
            let patch = merge_patch_for(&key, parse_value(&value))?;
            let config = api.call("PATCH", "/config", Some(&patch))?;
            value_at(&config, &key).cloned().unwrap_or(config)
        }
        Action::Command { name, arguments } => {
            let arguments = match arguments {
                Some(text) => serde_json::from_str(&text).map_err(|e| {
                    UsageError(format!("the arguments of {name} are not JSON: {e}"))
                })?,
                None => Value::Object(Map::new()),
            };
            let answer = api.call(
                "POST",
                &format!("/commands/{}", encode_path(&name)),
                Some(&arguments),
            )?;
            answer.get("result").cloned().unwrap_or(answer)
        }
        Action::Identity {
            action: IdentityAction::Verify { ek_ca, pcr_digest },
        } => verify_identity(&api, &ek_ca, pcr_digest.as_deref())?,
        Action::Fleet { .. } | Action::Provision { .. } => unreachable!("handled above"),
    };
    if !output.is_null() {
        println!("{}", serde_json::to_string_pretty(&output)?);
    }
    Ok(())
}

/// `provision …`: offline, no API.
fn run_provision(action: ProvisionAction) -> anyhow::Result<()> {
    match action {
        ProvisionAction::Keygen { key, public } => provision::keygen(&key, &public),
        ProvisionAction::Sign { key, payload, out } => {
            let bundle = provision::sign(&key, &payload)?;
            match out {
                Some(path) => roomd_base::fsutil::write_atomic(&path, bundle.as_bytes(), 0o644)
                    .with_context(|| format!("cannot write {}", path.display())),
                None => {
                    print!("{bundle}");
                    Ok(())
                }
            }
        }
    }
}

/// `fleet …`: prints the rooms or the per-room results; exits 1 when a room did not answer ok
/// (for `update`: when a wave was unhealthy).
fn run_fleet(broker: fleet::Broker, action: FleetAction) -> anyhow::Result<()> {
    let json_arg = |what: &str, text: &str| -> anyhow::Result<Value> {
        Ok(serde_json::from_str(text)
            .map_err(|e| UsageError(format!("{what} is not JSON: {e}")))?)
    };
    let send = |request: Value, target: FleetTarget| {
        fleet::send(
            &broker,
            request,
            &target.select.selection(),
            target.dry_run,
            Duration::from_secs(target.timeout_s),
        )
    };
    let (output, ok) = match action {
        FleetAction::List { select, format } => {
            print!("{}", fleet::list(&broker, &select.selection(), format)?);
            return Ok(());
        }
        FleetAction::Update {
            url,
            waves,
            reboot,
            wave_timeout,
            dry_run,
            include_in_meeting,
            format,
            select,
        } => {
            let plan = fleet::UpdatePlan {
                url,
                waves,
                reboot,
                wave_timeout: Duration::from_secs(wave_timeout),
                dry_run,
                include_in_meeting,
                format,
            };
            let (text, healthy) = fleet::update(&broker, &select.selection(), &plan)?;
            print!("{text}");
            return if healthy {
                Ok(())
            } else {
                Err(anyhow!("the rollout stopped: a wave was unhealthy"))
            };
        }
        FleetAction::Command {
            name,
            arguments,
            target,
        } => {
            let args = match arguments {
                Some(text) => json_arg("the arguments", &text)?,
                None => Value::Object(Map::new()),
            };
            send(serde_json::json!({"command": name, "args": args}), target)?
        }
        FleetAction::ConfigPatch { patch, target } => {
            let patch = json_arg("the patch", &patch)?;
            if !patch.is_object() {
                return Err(UsageError("the patch must be a JSON object".into()).into());
            }
            send(serde_json::json!({"config_patch": patch}), target)?
        }
    };
    println!("{}", serde_json::to_string_pretty(&output)?);
    if ok {
        Ok(())
    } else {
        Err(anyhow!("not every room answered ok"))
    }
}

/// `identity verify`: fetches the identity, asks for a quote over a fresh nonce, checks both.
fn verify_identity(api: &Api, ek_ca: &Path, pcr_digest: Option<&str>) -> anyhow::Result<Value> {
    let ca_pem = std::fs::read(ek_ca)
        .with_context(|| format!("cannot read the EK CA file {}", ek_ca.display()))?;
    let identity = api.call("GET", "/identity", None)?;
    // Checked before a quote is asked for: the key that signs it must be in the EK's TPM.
    let challenge = roomd_attestation::challenge_ak_binding(&identity, &ca_pem)?;
    let answer = api.call("POST", "/identity/activate", Some(&challenge.request))?;
    challenge.check_answer(&answer)?;
    let mut nonce = [0u8; 32];
    roomd_base::random::fill(&mut nonce);
    let nonce_hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let quote = api.call(
        "POST",
        "/identity/quote",
        Some(&serde_json::json!({ "nonce": nonce_hex })),
    )?;
    Ok(roomd_attestation::check_device(
        &identity, &quote, &nonce, &ca_pem, pcr_digest,
    )?)
}

/// The API of one roomd, reached with one token.
struct Api {
    agent: ureq::Agent,
    base: String,
    token: String,
}

impl Api {
    fn new(url: &str, token: String, cacert: Option<&Path>) -> anyhow::Result<Api> {
        let roots = match cacert {
            Some(path) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("cannot read the certificate {}", path.display()))?;
                let cert = Certificate::from_pem(&pem)
                    .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
                RootCerts::new_with_certs(&[cert])
            }
            None => RootCerts::WebPki,
        };
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(roots)
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .https_only(true)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Ok(Api {
            agent,
            base: format!("{}/api/v1", url.trim_end_matches('/')),
            token,
        })
    }

    /// Performs one request; a non-2xx answer becomes an [`ApiError`] with roomd's message.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Accept", "application/json");
        let sent = match body {
            Some(body) => self.agent.run(
                request
                    .header("Content-Type", "application/json")
                    .body(body.to_string())?,
            ),
            None => self.agent.run(request.body(())?),
        };
        let mut response = sent.with_context(|| format!("{method} {url} failed"))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("cannot read roomd's answer to {method} {url}"))?;
        if !(200..300).contains(&status) {
            return Err(api_error(status, &text).into());
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .with_context(|| format!("roomd's answer to {method} {url} is not JSON"))
    }
}

fn api_error(status: u16, body: &str) -> ApiError {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    ApiError {
        status,
        code: field("error").unwrap_or_else(|| "error".to_owned()),
        message: field("message").unwrap_or_else(|| {
            let trimmed = body.trim();
            if trimmed.is_empty() {
                "roomd gave no reason".to_owned()
            } else {
                trimmed.chars().take(500).collect()
            }
        }),
    }
}

/// VALUE as JSON when it parses (`30`, `true`, `["a"]`), otherwise as a string (`grid`).
fn parse_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// `a.b.c` and VALUE → `{"a":{"b":{"c":VALUE}}}` (an RFC 7396 merge patch).
fn merge_patch_for(key: &str, value: Value) -> anyhow::Result<Value> {
    let segments: Vec<&str> = key.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        bail!(UsageError(format!(
            "{key:?} is not a configuration key: use dotted names like audio.default_volume"
        )));
    }
    Ok(segments.iter().rev().fold(value, |inner, segment| {
        let mut object = Map::new();
        object.insert((*segment).to_owned(), inner);
        Value::Object(object)
    }))
}

/// The value at dotted `key` in `tree`.
fn value_at<'a>(tree: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.')
        .try_fold(tree, |node, segment| node.as_object()?.get(segment))
}

/// Percent-encodes everything but unreserved characters and `/`, so a path argument cannot
/// smuggle a query, fragment or other route into the URL.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_keys_become_nested_merge_patches() {
        let patch = merge_patch_for("audio.default_volume", json!(30));
        assert_eq!(patch.ok(), Some(json!({"audio": {"default_volume": 30}})));
        assert!(merge_patch_for("audio..x", json!(1)).is_err());
    }

    #[test]
    fn values_are_json_when_they_parse_and_strings_otherwise() {
        assert_eq!(parse_value("30"), json!(30));
        assert_eq!(parse_value("false"), json!(false));
        assert_eq!(parse_value("[\"a\"]"), json!(["a"]));
        assert_eq!(parse_value("grid"), json!("grid"));
    }

    #[test]
    fn paths_cannot_carry_queries_or_fragments() {
        assert_eq!(encode_path("audio/volume"), "audio/volume");
        assert_eq!(encode_path("a?b#c d"), "a%3Fb%23c%20d");
    }

    #[test]
    fn error_bodies_yield_the_servers_message() {
        let e = api_error(
            422,
            r#"{"error":"invalid_config","message":"audio.x: bad"}"#,
        );
        assert_eq!(e.message, "audio.x: bad");
        assert_eq!(e.code, "invalid_config");
        assert_eq!(api_error(502, "").message, "roomd gave no reason");
    }
}
