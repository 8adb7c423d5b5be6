//! A real Janus 1.1 (Debian's `janus`) for the tests: `janus -F <dir>` with a minimal
//! configuration written here (no admin secret, only the VideoRoom plugin and the HTTP
//! transport on 127.0.0.1), over plain HTTP or HTTPS with a given certificate.
//! Plugin and transport folders hold symlinks to just the two libraries we want, which is
//! simpler and stricter than listing everything else to disable.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LIBS: &str = "/usr/lib/x86_64-linux-gnu/janus";

/// Test rooms: 1234 with PIN "4321" and talking events; 5678 without PIN.
pub(super) const ROOM: u64 = 1234;
pub(super) const PIN: &str = "4321";
pub(super) const OPEN_ROOM: u64 = 5678;

pub(super) struct Janus {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

/// TLS for the HTTPS transport: PEM files of the server certificate and key.
pub(super) struct Tls<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
}

impl Janus {
    pub(super) fn start(tls: Option<Tls<'_>>) -> Janus {
        // The port can be taken between probing and Janus binding: retry on fresh ports.
        let mut last = String::new();
        for _ in 0..3 {
            match Janus::try_start(tls.as_ref()) {
                Ok(janus) => return janus,
                Err(e) => last = e,
            }
        }
        panic!("Janus does not start: {last}");
    }

    fn try_start(tls: Option<&Tls<'_>>) -> Result<Janus, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let d = &dir.path().to_path_buf();
        for (sub, lib) in [
            ("plugins", "libjanus_videoroom.so"),
            ("transports", "libjanus_http.so"),
        ] {
            std::fs::create_dir(d.join(sub)).map_err(|e| e.to_string())?;
            std::os::unix::fs::symlink(Path::new(LIBS).join(sub).join(lib), d.join(sub).join(lib))
                .map_err(|e| e.to_string())?;
        }
        std::fs::create_dir(d.join("empty")).map_err(|e| e.to_string())?;
        let port = free_port();
        let dir_text = d.display();
        write(
            d,
            "janus.jcfg",
            &format!(
                "general: {{
  configs_folder = \"{dir_text}\"
  plugins_folder = \"{dir_text}/plugins\"
  transports_folder = \"{dir_text}/transports\"
  events_folder = \"{dir_text}/empty\"
  loggers_folder = \"{dir_text}/empty\"
  debug_level = 4
  session_timeout = 60
}}
certificates: {{}}
media: {{}}
nat: {{ ice_ignore_list = \"vmnet\" }}
plugins: {{}}
transports: {{}}
loggers: {{}}
events: {{}}
"
            ),
        )?;
        let (transport, url) = match tls {
            None => (
                format!("http = true\n  port = {port}\n  ip = \"127.0.0.1\"\n  https = false"),
                format!("http://127.0.0.1:{port}/janus"),
            ),
            Some(_) => (
                format!(
                    "http = false\n  https = true\n  secure_port = {port}\n  secure_ip = \"127.0.0.1\""
                ),
                format!("https://127.0.0.1:{port}/janus"),
            ),
        };
        let certificates = match tls {
            None => String::new(),
            Some(tls) => format!(
                "cert_pem = \"{}\"\n  cert_key = \"{}\"",
                tls.cert.display(),
                tls.key.display()
            ),
        };
        write(
            d,
            "janus.transport.http.jcfg",
            &format!(
                "general: {{\n  json = \"plain\"\n  base_path = \"/janus\"\n  {transport}\n}}
admin: {{ admin_http = false\n  admin_https = false }}
certificates: {{\n  {certificates}\n}}
"
            ),
        )?;
        write(
            d,
            "janus.plugin.videoroom.jcfg",
            &format!(
                "general: {{}}
room-{ROOM}: {{ description = \"PIN room\"\n  pin = \"{PIN}\"\n  publishers = 6\n  audiolevel_event = true }}
room-{OPEN_ROOM}: {{ description = \"Open room\"\n  publishers = 6 }}
"
            ),
        )?;
        let log = std::fs::File::create(d.join("janus.log")).map_err(|e| e.to_string())?;
        let child = Command::new("janus")
            .arg("-F")
            .arg(d)
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run janus (apt-get install janus): {e}"))?;
        let mut janus = Janus {
            child,
            url,
            _dir: dir,
        };
        janus.wait_listening(port, &d.join("janus.log"))?;
        Ok(janus)
    }

    /// Waits until Janus' transport accepts connections (it loads the plugin first).
    fn wait_listening(&mut self, port: u16, log: &PathBuf) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                return Err(format!("janus exited ({status}): {text}"));
            }
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if text.contains("JANUS REST (HTTP/HTTPS) transport plugin initialized")
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("janus did not listen within 15 s".to_owned())
    }
}

impl Drop for Janus {
    fn drop(&mut self) {
        // A failing test shows what Janus said (the test harness captures this per test).
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self._dir.path().join("janus.log"));
            eprintln!("--- Janus log ---\n{}", log.unwrap_or_default());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    std::fs::write(dir.join(name), text).map_err(|e| format!("{name}: {e}"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A veth pair with a private address on one end, removed when dropped (deleting one end
/// deletes both).
pub(super) struct TestInterface {
    name: String,
}

impl Drop for TestInterface {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.name])
            .status();
    }
}

/// ICE (libnice and Janus) ignores loopback: media needs a non-loopback address. Uses the
/// machine's own when it has one; otherwise adds a veth pair (tests run as root; veth rather
/// than `dummy` because not every kernel here has the dummy module).
pub(super) fn ensure_non_loopback_address() -> Option<TestInterface> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global", "up"])
        .output()
        .expect("ip (iproute2) runs");
    if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
        return None;
    }
    let name = format!("rdj{}", std::process::id());
    let address = format!(
        "10.254.{}.{}/32",
        std::process::id() % 250,
        1 + std::process::id() % 200
    );
    let run = |args: &[&str]| {
        let status = Command::new("ip").args(args).status().expect("ip runs");
        assert!(status.success(), "ip {args:?} failed (the test needs root)");
    };
    let peer = format!("{name}p");
    run(&["link", "add", &name, "type", "veth", "peer", "name", &peer]);
    let interface = TestInterface { name: name.clone() };
    run(&["addr", "add", &address, "dev", &name]);
    run(&["link", "set", &peer, "up"]);
    run(&["link", "set", &name, "up"]);
    Some(interface)
}
