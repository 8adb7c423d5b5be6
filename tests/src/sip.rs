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
/// Kamailio's plain UDP port inside the namespace (for the SIP peers in the namespace).
pub const KAMAILIO_UDP_PORT: u16 = 5060;
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
        Kamailio::start_with(network, ca, users, false)
    }

    /// As [`Kamailio::start`]; with `swap_fingerprints`, it stands in between like an attacker
    /// on the signalling path: every DTLS fingerprint in the INVITEs it relays is replaced by
    /// [`SWAPPED_FINGERPRINT`], the certificate of someone else.
    pub fn start_with(
        network: &TestNetwork,
        ca: &TestCa,
        users: &[(&str, &str)],
        swap_fingerprints: bool,
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
        write(
            "kamailio.cfg",
            &kamailio_config(dir.path(), address, users, swap_fingerprints),
        )?;
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

/// The fingerprint a fingerprint-swapping [`Kamailio`] writes into the INVITEs it relays.
pub const SWAPPED_FINGERPRINT: &str = "0F:1E:2D:3C:4B:5A:69:78:87:96:A5:B4:C3:D2:E1:F0:0F:1E:2D:3C:4B:5A:69:78:87:96:A5:B4:C3:D2:E1:F0";

fn kamailio_config(
    dir: &Path,
    address: Ipv4Addr,
    users: &[(&str, &str)],
    swap_fingerprints: bool,
) -> String {
    let mut passwords = String::new();
    for (user, password) in users {
        let _ = writeln!(passwords, "    $sht(users=>{user}) = \"{password}\";");
    }
    let swap = if swap_fingerprints {
        format!(
            "if (subst_body('/a=fingerprint:sha-256 [0-9a-f:]+/a=fingerprint:sha-256 {SWAPPED_FINGERPRINT}/gi')) {{\n            xlog(\"L_NOTICE\", \"INVITE body: fingerprints swapped\\n\");\n        }}"
        )
    } else {
        String::new()
    };
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
listen=udp:{address}:{KAMAILIO_UDP_PORT}
# Requests back to the room go over the TLS connection it opened (its Via carries "alias").
tcp_accept_aliases=yes
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"

loadmodule "tls.so"
loadmodule "tm.so"
loadmodule "sl.so"
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
# A request to a peer that is gone gets 408 after 5 s without any answer (default 30 s).
modparam("tm", "fr_timer", 5000)

event_route[htable:mod-init] {{
{passwords}}}

request_route {{
    xlog("L_NOTICE", "REQUEST $rm $ru from $si:$sp over $pr\n");
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    # In-dialog requests (ACK, BYE) follow the route recorded on the INVITE.
    if (has_totag()) {{
        if (loose_route() || is_method("ACK")) {{
            t_relay();
        }} else {{
            sl_send_reply("404", "Not here");
        }}
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            t_relay();
        }}
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
    if (is_method("INVITE")) {{
        if (!lookup("location")) {{
            xlog("L_NOTICE", "INVITE to $ru from $si over $pr: not registered\n");
            sl_send_reply("404", "Not Found");
            exit;
        }}
        record_route();
        {swap}
        xlog("L_NOTICE", "INVITE from $fu over $pr relayed to $ru\n");
        t_relay();
        exit;
    }}
    sl_send_reply("501", "Not Implemented");
}}
"#,
        dir = dir.display(),
    )
    .replace("MAX_EXPIRES", &MAX_EXPIRES_S.to_string())
}

/// Baresip's SIP port inside the namespace.
pub const BARESIP_SIP_PORT: u16 = 5070;
/// Baresip's control port (`ctrl_tcp`: netstring-framed JSON commands) inside the namespace.
pub const BARESIP_CTRL_PORT: u16 = 4444;
/// The display name baresip's calls carry in their From header.
pub const BARESIP_DISPLAY_NAME: &str = "Alice Example";

/// How a [`Baresip`] protects its media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEncryption {
    /// SDES-SRTP only (`srtp-mand`): offers and accepts RTP/SAVP with a=crypto, nothing else.
    SrtpMandatory,
    /// None: plain RTP/AVP.
    None,
    /// DTLS-SRTP (`dtls_srtp`): offers UDP/TLS/RTP/SAVP with a=fingerprint and a=setup.
    DtlsSrtp,
    /// DTLS-SRTP with RTP and RTCP on one port (`rtcp_mux yes`, `a=rtcp-mux`): one DTLS
    /// association per stream.
    DtlsSrtpMux,
}

/// A running baresip 1.0 (Debian `baresip`) in the namespace: registered at a [`Kamailio`]
/// over UDP as `user`, answering calls by itself, sending a moving test picture (`fakevideo`)
/// as H.264 (`avcodec`) and a sine tone (`ausine`), and writing what it receives to WAV files
/// (`sndfile`). Stopped when dropped.
pub struct Baresip {
    dir: tempfile::TempDir,
    child: Option<Child>,
    user: String,
    /// Which of the baresips of this process it is: its ports are offset by it, so that
    /// several can share a namespace (the first gets the `BARESIP_*` ports).
    instance: u16,
}

impl Baresip {
    /// A baresip registered as `user` at `kamailio`, speaking `audio` and H.264.
    pub fn start(
        network: &TestNetwork,
        kamailio: &Kamailio,
        user: &str,
        password: &str,
        encryption: MediaEncryption,
        audio: PeerAudio,
    ) -> Result<Baresip, HarnessError> {
        Baresip::start_with_video(
            network,
            kamailio,
            user,
            password,
            encryption,
            audio,
            PeerVideo::H264,
        )
    }

    /// As [`Baresip::start`], speaking `video`.
    pub fn start_with_video(
        network: &TestNetwork,
        kamailio: &Kamailio,
        user: &str,
        password: &str,
        encryption: MediaEncryption,
        audio: PeerAudio,
        video: PeerVideo,
    ) -> Result<Baresip, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("roomd-baresip-")
            .tempdir()
            .map_err(|e| HarnessError::io("cannot create a directory for baresip", e))?;
        let address = network.namespace_address();
        let mediaenc = match encryption {
            MediaEncryption::SrtpMandatory => ";mediaenc=srtp-mand",
            MediaEncryption::None => "",
            MediaEncryption::DtlsSrtp | MediaEncryption::DtlsSrtpMux => ";mediaenc=dtls_srtp",
        };
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text)
                .map_err(|e| HarnessError::io(format!("cannot write baresip's {name}"), e))
        };
        write(
            "accounts",
            &format!(
                "\"{BARESIP_DISPLAY_NAME}\" <sip:{user}@{address}>;auth_pass={password};outbound=\"sip:{address}:{KAMAILIO_UDP_PORT};transport=udp\";regint=60;answermode=auto{mediaenc}\n"
            ),
        )?;
        static INSTANCES: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
        let instance = INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 64;
        let mut config = baresip_config(dir.path(), address, audio, video, instance);
        if encryption == MediaEncryption::DtlsSrtpMux {
            config = config.replace("rtcp_mux no\n", "rtcp_mux yes\n");
        }
        write("config", &config)?;
        write("contacts", "")?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("baresip.log"))
            .map_err(|e| HarnessError::io("cannot open baresip's log file", e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| HarnessError::io("cannot open baresip's log file", e))?;
        let child = network
            .command("baresip")
            .arg("-f")
            .arg(dir.path())
            .arg("-v")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(|e| HarnessError::io("cannot start baresip (Debian package baresip)", e))?;
        let mut baresip = Baresip {
            dir,
            child: Some(child),
            user: user.to_owned(),
            instance,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let registered = format!("{user}@{address}");
        loop {
            let log = baresip.log_text();
            if log
                .lines()
                .any(|l| l.contains(&registered) && l.contains("200 OK"))
            {
                break;
            }
            if let Some(child) = baresip.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(HarnessError::PeerStart {
                    what: "baresip".to_owned(),
                    message: format!("exited ({status}); its log:\n{log}"),
                });
            }
            if Instant::now() > deadline {
                return Err(HarnessError::PeerStart {
                    what: "baresip".to_owned(),
                    message: format!("not registered after {START_TIMEOUT:?}; its log:\n{log}"),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = kamailio;
        Ok(baresip)
    }

    /// `sips:<user>@<kamailio>`: how the room calls this peer.
    pub fn uri(&self, kamailio: &Kamailio) -> String {
        format!(
            "sips:{}@{}:{KAMAILIO_TLS_PORT}",
            self.user,
            kamailio.address()
        )
    }

    /// Runs a baresip command (as its `/command params` menu takes it, e.g. `dial`, `hangup`,
    /// `hold`, `resume`) through its `ctrl_tcp` interface; returns the response's data.
    pub fn command(
        &self,
        network: &TestNetwork,
        command: &str,
        params: &str,
    ) -> Result<String, HarnessError> {
        use std::io::{Read, Write};
        let fail = |message: String| HarnessError::PeerStart {
            what: format!("baresip command {command}"),
            message,
        };
        let target = SocketAddr::from((
            network.namespace_address(),
            BARESIP_CTRL_PORT + self.instance,
        ));
        let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(5))
            .map_err(|e| fail(format!("cannot connect to {target}: {e}")))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| fail(e.to_string()))?;
        let json =
            serde_json::json!({"command": command, "params": params, "token": "t1"}).to_string();
        stream
            .write_all(format!("{}:{json},", json.len()).as_bytes())
            .map_err(|e| fail(e.to_string()))?;
        // Netstrings back: events, then the response to the command.
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            while let Some(colon) = buffer.iter().position(|&b| b == b':') {
                let length: usize = std::str::from_utf8(&buffer[..colon])
                    .ok()
                    .and_then(|l| l.parse().ok())
                    .ok_or_else(|| fail("not a netstring".to_owned()))?;
                if buffer.len() < colon + 1 + length + 1 {
                    break;
                }
                let message: serde_json::Value =
                    serde_json::from_slice(&buffer[colon + 1..colon + 1 + length])
                        .map_err(|e| fail(e.to_string()))?;
                buffer.drain(..colon + 1 + length + 1);
                if message["response"] == true {
                    if message["ok"] != true {
                        return Err(fail(format!("refused: {message}")));
                    }
                    return Ok(message["data"].as_str().unwrap_or_default().to_owned());
                }
            }
            let n = stream
                .read(&mut chunk)
                .map_err(|e| fail(format!("no response: {e}")))?;
            if n == 0 {
                return Err(fail("connection closed without a response".to_owned()));
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
    }

    /// Everything baresip logged so far (`-v`: calls, media, SRTP).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("baresip.log")).unwrap_or_default()
    }

    /// What baresip receives now, from its status line `audio=TX/RX video=TX/RX (bit/s)`:
    /// (audio, video) received bit rates of the last such line; `None` before the first.
    pub fn received_bitrates(&self) -> Option<(u64, u64)> {
        self.received_bitrates_since(0)
    }

    /// As [`Baresip::received_bitrates`], from status lines logged after the first `offset`
    /// bytes of the log (see [`Baresip::log_len`]).
    pub fn received_bitrates_since(&self, offset: usize) -> Option<(u64, u64)> {
        let text = self.log_text();
        let log = text.get(offset..)?;
        let last = log
            .rsplit("audio=")
            .next()
            .filter(|_| log.contains("audio="))?;
        let (audio, rest) = last.split_once(" video=")?;
        let video = rest.split_whitespace().next()?;
        let rx = |pair: &str| pair.split_once('/')?.1.parse::<u64>().ok();
        Some((rx(audio)?, rx(video)?))
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// How long the log is now, as an offset for [`Baresip::received_bitrates_since`].
    pub fn log_len(&self) -> usize {
        self.log_text().len()
    }

    /// The WAV files `sndfile` wrote (decoded audio per call and direction).
    pub fn recordings(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "wav"));
        files.sort();
        files
    }

    /// Kills baresip at once (SIGKILL): it sends no BYE, as a peer whose power or network
    /// went away.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

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

impl Drop for Baresip {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- baresip log ----\n{}\n---- end of baresip log ----",
                self.log_text()
            );
        }
        self.stop();
    }
}

/// The audio codecs a test's baresip speaks (the modules it loads).
#[derive(Debug, Clone, Copy)]
pub enum PeerAudio {
    /// Opus and G.711: a softphone.
    OpusAndG711,
    /// G.711 only (no Opus module): a desk phone or gateway that speaks nothing else.
    G711Only,
    /// G.722 only: a wideband desk phone.
    G722Only,
}

/// The video codec a test's baresip speaks (the module it loads).
#[derive(Debug, Clone, Copy)]
pub enum PeerVideo {
    /// H.264 through libavcodec (x264 encoding).
    H264,
    /// VP8 only (libvpx): a WebRTC gateway or a softphone without H.264.
    Vp8Only,
    /// H.264, taking at most `kbps` (baresip's `video_bitrate`, which its SDP says as `b=AS`).
    H264Limited {
        /// kbit/s.
        kbps: u32,
    },
    /// H.264 at 1280x720, 30 fps, 1.5 Mbit/s: a room-system call (the SIP benchmark).
    H264Hd,
}

fn baresip_config(
    dir: &Path,
    address: Ipv4Addr,
    audio: PeerAudio,
    video: PeerVideo,
    instance: u16,
) -> String {
    let sip_port = BARESIP_SIP_PORT + 2 * instance;
    let ctrl_port = BARESIP_CTRL_PORT + instance;
    let rtp_first = 20000 + 200 * u32::from(instance);
    let rtp_last = rtp_first + 100;
    let codecs = match audio {
        PeerAudio::OpusAndG711 => "module g711.so\nmodule opus.so\n",
        PeerAudio::G711Only => "module g711.so\n",
        PeerAudio::G722Only => "module g722.so\n",
    };
    let video_codec = match video {
        PeerVideo::H264 | PeerVideo::H264Limited { .. } | PeerVideo::H264Hd => {
            "module avcodec.so\n"
        }
        PeerVideo::Vp8Only => "module vp8.so\n",
    };
    // baresip says its limits in SDP (b=AS per section) from rtp_bandwidth's maximum: 128
    // kbit/s for audio, the rest for video.
    let (video_bitrate, rtp_bandwidth) = match video {
        PeerVideo::H264Limited { kbps } => (
            u64::from(kbps) * 1000,
            format!("rtp_bandwidth 64-{}\n", kbps + 128),
        ),
        PeerVideo::H264Hd => (1_500_000, String::new()),
        _ => (1_000_000, String::new()),
    };
    let video_size = match video {
        PeerVideo::H264Hd => "1280x720",
        _ => "640x360",
    };
    format!(
        "poll_method epoll\n\
         sip_listen {address}:{sip_port}\n\
         call_local_timeout 120\n\
         audio_source ausine,440\n\
         ausrc_srate 48000\n\
         ausrc_channels 2\n\
         auplay_srate 48000\n\
         audio_player aubridge,nil\n\
         audio_alert aubridge,nil\n\
         video_source fakevideo,nil\n\
         video_display fakevideo,nil\n\
         video_size {video_size}\n\
         video_bitrate {video_bitrate}\n\
         {rtp_bandwidth}\
         video_fps 30\n\
         rtp_tos 0\n\
         rtp_ports {rtp_first}-{rtp_last}\n\
         rtcp_mux no\n\
         jitter_buffer_delay 2-10\n\
         avcodec_h264enc libx264\n\
         avcodec_h264dec h264\n\
         snd_path {dir}\n\
         module_path /usr/lib/baresip/modules\n\
         {codecs}\
         {video_codec}\
         module ausine.so\n\
         module aubridge.so\n\
         module fakevideo.so\n\
         module srtp.so\n\
         module dtls_srtp.so\n\
         module sndfile.so\n\
         module rtcpsummary.so\n\
         module_app account.so\n\
         module_app contact.so\n\
         module_app menu.so\n\
         module_app ctrl_tcp.so\n\
         ctrl_tcp_listen {address}:{ctrl_port}\n",
        dir = dir.display()
    )
}
