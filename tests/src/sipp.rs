//! SIPp (Debian `sip-tester`) as a SIP peer that says exactly what a scenario says and nothing
//! else: here, a caller whose call is answered and which then never sends a single RTP packet
//! (a gateway that lost its media, a firewall that eats RTP). Its scenario is written here.

use std::fs::OpenOptions;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::sip::{KAMAILIO_UDP_PORT, Kamailio};
use crate::{HarnessError, TestNetwork};

/// SIPp's SIP port inside the namespace.
pub const SIPP_PORT: u16 = 5090;
/// The user part of a silent caller's address (`sip:silent@<namespace address>`).
pub const SILENT_USER: &str = "silent";

/// A SIPp calling through a [`Kamailio`] that offers SDES-SRTP audio, acknowledges the answer,
/// sends no media, and waits (at most 60 s) for the far end's BYE, which it answers.
pub struct SilentCaller {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl SilentCaller {
    /// Calls `user` (an address of record at `kamailio`).
    pub fn call(
        network: &TestNetwork,
        kamailio: &Kamailio,
        user: &str,
    ) -> Result<SilentCaller, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("roomd-sipp-")
            .tempdir()
            .map_err(|e| HarnessError::io("cannot create a directory for SIPp", e))?;
        let scenario = dir.path().join("silent-caller.xml");
        std::fs::write(&scenario, silent_caller_scenario())
            .map_err(|e| HarnessError::io("cannot write SIPp's scenario", e))?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("sipp.log"))
            .map_err(|e| HarnessError::io("cannot open SIPp's log file", e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| HarnessError::io("cannot open SIPp's log file", e))?;
        let address = network.namespace_address();
        let child = network
            .command("sipp")
            .arg(format!("{}:{KAMAILIO_UDP_PORT}", kamailio.address()))
            .arg("-sf")
            .arg(&scenario)
            .args(["-s", user, "-i", &address.to_string()])
            .args(["-p", &SIPP_PORT.to_string(), "-m", "1", "-nostdin"])
            // Every message in and out, for the test's failure output.
            .args(["-trace_msg", "-message_file"])
            .arg(dir.path().join("messages.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(|e| HarnessError::io("cannot start sipp (Debian package sip-tester)", e))?;
        Ok(SilentCaller {
            dir,
            child: Some(child),
        })
    }

    /// Waits for SIPp to end, at most `limit`: success when its scenario ran to the end (the
    /// call answered, then a BYE received and answered).
    pub fn wait(&mut self, limit: Duration) -> Result<ExitStatus, HarnessError> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(HarnessError::PeerStart {
                    what: "sipp".to_owned(),
                    message: format!("still running after {limit:?}:\n{}", self.log_text()),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIPp's output and every SIP message it sent and received.
    pub fn log_text(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}\n{}", read("sipp.log"), read("messages.log"))
    }
}

impl Drop for SilentCaller {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn silent_caller_scenario() -> String {
    let mut key = [0u8; 30];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    let key = base64::engine::general_purpose::STANDARD.encode(key);
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="silent caller">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Silent Peer" <sip:{SILENT_USER}@[local_ip]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:{SILENT_USER}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=- 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [local_ip]
      t=0 0
      m=audio 16000 RTP/SAVP 0
      a=rtpmap:0 PCMU/8000
      a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}
      a=sendrecv

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Silent Peer" <sip:{SILENT_USER}@[local_ip]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      [routes]
      Contact: <sip:{SILENT_USER}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv request="BYE" timeout="60000"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:{SILENT_USER}@[local_ip]:[local_port]>
      Content-Length: 0

    ]]>
  </send>
</scenario>
"#
    )
}
