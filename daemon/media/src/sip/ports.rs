//! The room's UDP ports of one SIP call: bound (as the call's own `udpsrc` elements) before the
//! room's offer or answer names them, and kept bound until the call's media takes them over. A
//! far end starts sending with its answer; what it sends before the media runs waits in the
//! socket instead of being lost (its first keyframe among it), and no other program can take a
//! port in between.

use std::net::IpAddr;

use gstreamer as gst;
use gstreamer::prelude::*;

use super::make;
use crate::MediaError;
use crate::taps::Feed;

/// Tries at finding an even port whose odd neighbour is free too.
const ATTEMPTS: usize = 32;

/// An RTP port and the RTCP port after it, each held by a `udpsrc` in READY (bound).
pub(super) struct PortPair {
    pub(super) rtp: gst::Element,
    pub(super) rtcp: gst::Element,
    pub(super) port: u16,
}

impl Drop for PortPair {
    fn drop(&mut self) {
        // Unbinds, unless the call's pipeline took the elements (then it owns their state).
        for source in [&self.rtp, &self.rtcp] {
            if source.parent().is_none() {
                let _ = source.set_state(gst::State::Null);
            }
        }
    }
}

/// The port pairs of a call on one address: its audio, its main video (the camera) and its
/// content video (slides shared in the call).
pub struct SipPorts {
    pub(super) local_ip: IpAddr,
    pub(super) audio: PortPair,
    pub(super) video: PortPair,
    pub(super) content: PortPair,
}

impl std::fmt::Debug for SipPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipPorts")
            .field("local_ip", &self.local_ip)
            .field("audio", &self.audio.port)
            .field("video", &self.video.port)
            .field("content", &self.content.port)
            .finish()
    }
}

impl SipPorts {
    /// Binds three pairs of neighbouring ports (RTP even, RTCP the next) on `local_ip`, one
    /// for each feed. The content pair is bound whether or not the call will carry content:
    /// the room's offer names it before the far end's answer says.
    pub fn bind(local_ip: IpAddr) -> Result<SipPorts, MediaError> {
        Ok(SipPorts {
            local_ip,
            audio: bind_pair(local_ip)?,
            video: bind_pair(local_ip)?,
            content: bind_pair(local_ip)?,
        })
    }

    /// The RTP port of the stream carrying `feed` (RTCP on the next).
    pub fn port(&self, feed: Feed) -> u16 {
        self.pair(feed).port
    }

    pub(super) fn pair(&self, feed: Feed) -> &PortPair {
        match feed {
            Feed::Microphone => &self.audio,
            Feed::Camera => &self.video,
            Feed::Content => &self.content,
        }
    }
}

fn bound(local_ip: IpAddr, port: u16) -> Result<Option<gst::Element>, MediaError> {
    let source = make("udpsrc")?;
    source.set_property("address", local_ip.to_string());
    source.set_property("port", i32::from(port));
    if source.set_state(gst::State::Ready).is_err() {
        let _ = source.set_state(gst::State::Null);
        return Ok(None);
    }
    Ok(Some(source))
}

fn bind_pair(local_ip: IpAddr) -> Result<PortPair, MediaError> {
    for _ in 0..ATTEMPTS {
        // Port 0: the system picks a free one, which udpsrc then reports.
        let Some(rtp) = bound(local_ip, 0)? else {
            break;
        };
        let port = u16::try_from(rtp.property::<i32>("port")).unwrap_or(0);
        if port == 0 || port % 2 != 0 || port == u16::MAX {
            let _ = rtp.set_state(gst::State::Null);
            continue;
        }
        match bound(local_ip, port + 1)? {
            Some(rtcp) => return Ok(PortPair { rtp, rtcp, port }),
            None => {
                let _ = rtp.set_state(gst::State::Null);
            }
        }
    }
    Err(MediaError::Start(format!(
        "SIP call: no two neighbouring free UDP ports on {local_ip} after {ATTEMPTS} attempts"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_pairs_of_neighbouring_ports_are_held_until_dropped() {
        gst::init().unwrap();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let ports = SipPorts::bind(ip).unwrap();
        let feeds = [Feed::Microphone, Feed::Camera, Feed::Content];
        for feed in feeds {
            let port = ports.port(feed);
            assert_eq!(port % 2, 0);
            // Held: nobody else can bind them.
            assert!(std::net::UdpSocket::bind((ip, port)).is_err());
            assert!(std::net::UdpSocket::bind((ip, port + 1)).is_err());
        }
        let held: std::collections::HashSet<u16> = feeds.iter().map(|f| ports.port(*f)).collect();
        assert_eq!(held.len(), 3, "{ports:?}");
        let debug = format!("{ports:?}");
        for feed in ["audio", "video", "content"] {
            assert!(debug.contains(feed), "{debug}");
        }
        drop(ports);
        for port in held {
            assert!(std::net::UdpSocket::bind((ip, port)).is_ok());
            assert!(std::net::UdpSocket::bind((ip, port + 1)).is_ok());
        }
    }
}
