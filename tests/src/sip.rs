//! Real SIP peers for the SIP tests: Kamailio (Debian `kamailio`, `kamailio-tls-modules`) as a
//! TLS registrar with digest authentication, inside a [`TestNetwork`] namespace. Its
//! configuration is written here, minimal: `tls`, `usrloc` (in memory), `registrar`, and `auth`
//! checking passwords from an `htable` filled at start (no database server). Nothing is a
//! stand-in: roomd talks to the real Kamailio over TLS and verifies its certificate against a
//! CA made for the test.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{HarnessError, TestCa, TestNetwork};

/// Kamailio's SIP over TLS port inside the namespace.
pub const KAMAILIO_TLS_PORT: u16 = 5061;
/// A port inside the namespace where nothing listens (a proxy that is down).
pub const DEAD_TLS_PORT: u16 = 5062;
/// The longest registration Kamailio grants, in seconds.
pub const MAX_EXPIRES_S: u32 = 10;
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running Kamailio registrar; stopped when dropped.
pub struct Kamailio {
    dir: tempfile::TempDir,
    address: Ipv4Addr,
    child: Option<Child>,
}

impl Kamailio {
    /// Starts Kamailio in `network`'s namespace on `<namespace address>:5061` (TLS only), with
    /// a certificate for that address from `ca`, accepting REGISTERs of the given users
    /// (name, password).
    pub fn start(
        network: &TestNetwork,
        ca: &TestCa,
        users: &[(&str, &str)],
    ) -> Result<Kamailio, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("roomd-kamailio-")
            .tempdir()
            .map_err(|e| HarnessError::io("cannot create a directory for Kamailio", e))?;
        let address = network.namespace_address();
        let server = ca.issue_server(&[address.to_string()])?;
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text)
                .map_err(|e| HarnessError::io(format!("cannot write Kamailio's {name}"), e))
        };
        write("server.pem", &server.cert_pem)?;
        write("server.key", &server.key_pem)?;
        write("tls.cfg", &tls_config(dir.path()))?;
        write("kamailio.cfg", &kamailio_config(dir.path(), address, users))?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("kamailio.log"))
            .map_err(|e| HarnessError::io("cannot open Kamailio's log file", e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| HarnessError::io("cannot open Kamailio's log file", e))?;
        let child = network
            .command("kamailio")
            .arg("-f")
            .arg(dir.path().join("kamailio.cfg"))
            // Foreground, log to stderr, small shared memory (MB), runtime files here.
            .args(["-DD", "-E", "-m", "64", "-M", "8"])
            .arg("-Y")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(|e| {
                HarnessError::io(
                    "cannot start kamailio (Debian packages kamailio, kamailio-tls-modules)",
                    e,
                )
            })?;
        let mut kamailio = Kamailio {
            dir,
            address,
            child: Some(child),
        };
        kamailio.wait_ready()?;
        Ok(kamailio)
    }

    fn wait_ready(&mut self) -> Result<(), HarnessError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let target = SocketAddr::from((self.address, KAMAILIO_TLS_PORT));
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(HarnessError::PeerStart {
                    what: "kamailio".to_owned(),
                    message: format!("exited ({status}); its log:\n{}", self.log_text()),
                });
            }
            if TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(HarnessError::PeerStart {
                    what: "kamailio".to_owned(),
                    message: format!(
                        "no TLS listener on {target} after {START_TIMEOUT:?}; its log:\n{}",
                        self.log_text()
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `sips:<address>:5061`, as roomd's `sip.registrar`.
    pub fn sips_uri(&self) -> String {
        format!("sips:{}:{KAMAILIO_TLS_PORT}", self.address)
    }

    /// The namespace address Kamailio listens on.
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// Everything Kamailio logged so far (it logs each REGISTER it saves).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("kamailio.log")
    }

    /// Stops Kamailio (SIGTERM: its main process takes its children with it).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- Kamailio log ----\n{}\n---- end of Kamailio log ----",
                self.log_text()
            );
        }
        self.stop();
    }
}

fn tls_config(dir: &Path) -> String {
    // Clients are not asked for certificates: the room authenticates with digest.
    format!(
        "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n\
         private_key = {dir}/server.key\ncertificate = {dir}/server.pem\n\n\
         [client:default]\nverify_certificate = no\nrequire_certificate = no\n",
        dir = dir.display()
    )
}

fn kamailio_config(dir: &Path, address: Ipv4Addr, users: &[(&str, &str)]) -> String {
    let mut passwords = String::new();
    for (user, password) in users {
        let _ = writeln!(passwords, "    $sht(users=>{user}) = \"{password}\";");
    }
    format!(
        r#"#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=2
tcp_children=2
auto_aliases=no
enable_tls=yes
disable_tcp=no
listen=tls:{address}:{KAMAILIO_TLS_PORT}
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"

loadmodule "tls.so"
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "htable.so"

modparam("tls", "config", "{dir}/tls.cfg")
modparam("usrloc", "db_mode", 0)
# Short bindings, so that the tests see the room register again before expiry (the room asks
# for sip.register_interval_s, at least 60 s; the registrar grants at most this).
modparam("registrar", "min_expires", 5)
modparam("registrar", "max_expires", MAX_EXPIRES)
modparam("htable", "htable", "users=>size=4;")

event_route[htable:mod-init] {{
{passwords}}}

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (is_method("REGISTER")) {{
        if (!pv_auth_check("$fd", "$sht(users=>$au)", "0", "0")) {{
            xlog("L_NOTICE", "REGISTER of $fu from $si:$sp over $pr: challenged\n");
            auth_challenge("$fd", "0");
            exit;
        }}
        if (!save("location")) {{
            sl_reply_error();
            exit;
        }}
        xlog("L_NOTICE", "REGISTER of $fu (auth user $au) from $si:$sp over $pr saved, expires $hdr(Expires)\n");
        exit;
    }}
    sl_send_reply("501", "Not Implemented");
}}
"#,
        dir = dir.display(),
    )
    .replace("MAX_EXPIRES", &MAX_EXPIRES_S.to_string())
}
