//! Linphone's command-line client (Debian `linphone-cli` 5.1, H.264 through
//! `mediastreamer2-plugin-openh264`) as a second, independent SIP peer: registered at a
//! [`Kamailio`] over UDP, SDES-SRTP mandatory, answering calls by itself, its "camera" a static
//! picture sent at 15 fps, no sound card (it plays a WAV file and records to a file), no window.
//! It is driven by commands on its stdin; what it did is read from its debug log (its stdout
//! says little).

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant};

use crate::sip::{KAMAILIO_TLS_PORT, KAMAILIO_UDP_PORT, Kamailio};
use crate::{HarnessError, TestNetwork};

/// Linphone's SIP port inside the namespace (apart from baresip's).
pub const LINPHONE_SIP_PORT: u16 = 5190;
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `linphonec`; stopped when dropped.
pub struct Linphone {
    dir: tempfile::TempDir,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
}

/// How a Linphone reaches Kamailio and keys its media.
pub enum LinphoneSetup {
    /// SIP over UDP, SRTP keyed by SDES (mandatory).
    SdesOverUdp,
    /// SIP over TLS (Kamailio's certificate checked against this CA, PEM), SRTP keyed by DTLS
    /// (mandatory): an offer of SDES keys is refused.
    DtlsOverTls {
        /// The CA that issued Kamailio's certificate.
        ca_pem: String,
    },
}

impl Linphone {
    /// A linphonec registered as `user` (digest `password`) at `kamailio` over UDP, SDES-SRTP
    /// mandatory.
    pub fn start(
        network: &TestNetwork,
        kamailio: &Kamailio,
        user: &str,
        password: &str,
    ) -> Result<Linphone, HarnessError> {
        Linphone::start_with(
            network,
            kamailio,
            user,
            password,
            LinphoneSetup::SdesOverUdp,
        )
    }

    /// A linphonec registered as `user` (digest `password`) at `kamailio` as `setup` says.
    pub fn start_with(
        network: &TestNetwork,
        kamailio: &Kamailio,
        user: &str,
        password: &str,
        setup: LinphoneSetup,
    ) -> Result<Linphone, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("roomd-linphone-")
            .tempdir()
            .map_err(|e| HarnessError::io("cannot create a directory for linphone", e))?;
        // Its database lives here (HOME); without the directory it may not start.
        std::fs::create_dir_all(dir.path().join(".local/share/linphone"))
            .map_err(|e| HarnessError::io("cannot create linphone's data directory", e))?;
        let config = dir.path().join("linphonerc");
        let mut text = linphone_config(kamailio, user, password);
        if let LinphoneSetup::DtlsOverTls { ca_pem } = &setup {
            let ca = dir.path().join("ca.pem");
            std::fs::write(&ca, ca_pem)
                .map_err(|e| HarnessError::io("cannot write linphone's CA", e))?;
            let registrar = kamailio.address();
            text = text
                .replace(
                    &format!("sip_port={LINPHONE_SIP_PORT}\n"),
                    &format!(
                        "sip_port=0\nroot_ca={}\nverify_server_certs=1\nverify_server_cn=0\n",
                        ca.display()
                    ),
                )
                .replace(
                    "sip_tls_port=0\n",
                    &format!("sip_tls_port={LINPHONE_SIP_PORT}\n"),
                )
                .replace("media_encryption=srtp\n", "media_encryption=dtls\n")
                .replace(
                    &format!("reg_proxy=<sip:{registrar}:{KAMAILIO_UDP_PORT};transport=udp>"),
                    &format!("reg_proxy=<sip:{registrar}:{KAMAILIO_TLS_PORT};transport=tls>"),
                );
        }
        std::fs::write(&config, text)
            .map_err(|e| HarnessError::io("cannot write linphone's configuration", e))?;
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("out.log"))
            .map_err(|e| HarnessError::io("cannot open linphone's output file", e))?;
        let err = out
            .try_clone()
            .map_err(|e| HarnessError::io("cannot open linphone's output file", e))?;
        let mut child = network
            .command("linphonec")
            .env("HOME", dir.path())
            .arg("-c")
            .arg(&config)
            .args(["-d", "6", "-l"])
            .arg(dir.path().join("debug.log"))
            // Video capture and display on (the display is MSExtDisplay: no window); answer
            // calls at once.
            .args(["-C", "-D", "-a"])
            .stdin(Stdio::piped())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| {
                HarnessError::io(
                    "cannot start linphonec (Debian packages linphone-cli, \
                     mediastreamer2-plugin-openh264)",
                    e,
                )
            })?;
        let stdin = child.stdin.take();
        let mut linphone = Linphone {
            dir,
            child: Some(child),
            stdin,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while !linphone.debug_log().contains("to [LinphoneRegistrationOk]") {
            if let Some(child) = linphone.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(HarnessError::PeerStart {
                    what: "linphonec".to_owned(),
                    message: format!("exited ({status}); its output:\n{}", linphone.output()),
                });
            }
            if Instant::now() > deadline {
                return Err(HarnessError::PeerStart {
                    what: "linphonec".to_owned(),
                    message: format!(
                        "not registered after {START_TIMEOUT:?}; its output:\n{}\nits log on \
                         registration and TLS:\n{}",
                        linphone.output(),
                        linphone
                            .debug_log()
                            .lines()
                            .filter(|l| {
                                let l = l.to_lowercase();
                                l.contains("regist") || l.contains("tls") || l.contains("certif")
                            })
                            .collect::<Vec<_>>()
                            .join("\n")
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(linphone)
    }

    /// Sends one command line (as typed at its prompt: `call <uri>`, `terminate`).
    pub fn command(&mut self, line: &str) -> Result<(), HarnessError> {
        let stdin = self.stdin.as_mut().ok_or_else(|| HarnessError::PeerStart {
            what: "linphonec".to_owned(),
            message: "its stdin is closed".to_owned(),
        })?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| HarnessError::io(format!("cannot send {line:?} to linphonec"), e))
    }

    /// Its debug log (`-d 6`), without the display filter's flood of unsupported-method lines.
    pub fn debug_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("debug.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.contains("no such method on filter MSExtDisplay"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// What it printed.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("out.log")).unwrap_or_default()
    }

    /// Its directory (configuration, logs).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for Linphone {
    fn drop(&mut self) {
        let _ = self.command("quit");
        self.stdin = None;
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(3);
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

/// AVPF is on (`avpf=1`): with TMMBR agreed, Linphone's bandwidth controller asks the room for
/// less when its congestion detector sees the room's stream arrive ever later.
/// H.264 is offered with `packetization-mode=1` (Linphone's default is mode 0, which the room
/// does not send). `supported=replaces` leaves GRUU out (its Contact would carry the registrar's address, and
/// in-dialog requests would loop at the registrar); `hold_music` is what it plays as its voice
/// without a sound card (without a file it sends no audio and hangs up after 30 s).
fn linphone_config(kamailio: &Kamailio, user: &str, password: &str) -> String {
    let registrar = kamailio.address();
    format!(
        "[sip]\n\
         sip_port={LINPHONE_SIP_PORT}\n\
         sip_tcp_port=0\n\
         sip_tls_port=0\n\
         default_proxy=0\n\
         media_encryption=srtp\n\
         media_encryption_mandatory=1\n\
         supported=replaces\n\
         inc_timeout=60\n\
         \n\
         [rtp]\n\
         audio_rtp_port=7078\n\
         video_rtp_port=9078\n\
         avpf=1\n\
         \n\
         [sound]\n\
         echocancellation=0\n\
         hold_music=/usr/share/sounds/linphone/hello8000.wav\n\
         remote_ring=/usr/share/sounds/linphone/ringback.wav\n\
         \n\
         [video]\n\
         enabled=1\n\
         capture=1\n\
         display=1\n\
         automatically_accept=1\n\
         automatically_initiate=1\n\
         device=StaticImage: Static picture\n\
         displaytype=MSExtDisplay\n\
         nowebcam_uses_normal_fps=1\n\
         show_local=0\n\
         self_view=0\n\
         size=vga\n\
         \n\
         [proxy_0]\n\
         reg_proxy=<sip:{registrar}:{KAMAILIO_UDP_PORT};transport=udp>\n\
         reg_identity=\"Carol Linphone\" <sip:{user}@{registrar}>\n\
         reg_expires=600\n\
         reg_sendregister=1\n\
         publish=0\n\
         \n\
         [auth_info_0]\n\
         username={user}\n\
         passwd={password}\n\
         domain={registrar}\n\
         \n\
         [audio_codec_0]\n\
         mime=opus\n\
         rate=48000\n\
         channels=2\n\
         enabled=1\n\
         \n\
         [audio_codec_1]\n\
         mime=PCMU\n\
         rate=8000\n\
         channels=1\n\
         enabled=1\n\
         \n\
         [video_codec_0]\n\
         mime=H264\n\
         rate=90000\n\
         recv_fmtp=packetization-mode=1\n\
         enabled=1\n\
         \n\
         [video_codec_1]\n\
         mime=VP8\n\
         rate=90000\n\
         enabled=1\n"
    )
}
