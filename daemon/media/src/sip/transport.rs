//! How one stream of a SIP call meets the network: the room's UDP ports (each sends from the
//! port it receives on, as DTLS needs and NATs expect of symmetric RTP), and the protection
//! between rtpbin and those ports: SDES-SRTP (`srtpenc`/`srtpdec` with the keys of both SDPs),
//! DTLS-SRTP (`dtlssrtpenc`/`dtlssrtpdec`, one association per component, or one for both
//! when RTCP is multiplexed) or, only where policy allows, plain RTP.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::dtls::{self, Association, DtlsState, FINGERPRINT_LEN};
use super::ports::PortPair;
use super::{
    SRTP_KEY_LEN, SipStream, build_error, link_pads, make, request_pad, static_pad, stream_name,
};
use crate::{MediaError, MediaKind};

/// How a stream's RTP and RTCP are protected.
#[derive(Clone, PartialEq, Eq)]
pub enum Protection {
    /// Plain RTP: only when `meeting.require_encryption` is off and the far end wanted it.
    Plain,
    /// SDES-SRTP (RFC 4568), `AES_CM_128_HMAC_SHA1_80`.
    Sdes {
        /// The room's key (the far end decrypts with it).
        send: [u8; SRTP_KEY_LEN],
        /// The far end's key.
        receive: [u8; SRTP_KEY_LEN],
    },
    /// DTLS-SRTP (RFC 5764): keys from a handshake on the media ports.
    Dtls {
        /// The room starts the handshake (`a=setup:active` on its side).
        client: bool,
        /// SHA-256 of the certificate the far end's SDP names.
        remote_fingerprint: [u8; FINGERPRINT_LEN],
        /// RTP and RTCP share the RTP port (`a=rtcp-mux`): one association instead of two.
        rtcp_mux: bool,
    },
}

impl std::fmt::Debug for Protection {
    // Keys are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Protection::Plain => f.write_str("Plain"),
            Protection::Sdes { .. } => f.write_str("Sdes(…)"),
            Protection::Dtls {
                client, rtcp_mux, ..
            } => f
                .debug_struct("Dtls")
                .field("client", client)
                .field("rtcp_mux", rtcp_mux)
                .finish_non_exhaustive(),
        }
    }
}

impl Protection {
    /// Whether the stream runs SRTP.
    pub fn encrypted(&self) -> bool {
        !matches!(self, Protection::Plain)
    }
}

/// rtpbin's pads of one session (`session`) that the network side links to.
pub(super) struct SessionPads {
    pub(super) session: u32,
    /// The room's RTP out, when it sends this stream.
    pub(super) rtp_out: Option<gst::Pad>,
    pub(super) rtcp_out: gst::Pad,
    pub(super) rtp_in: gst::Pad,
    pub(super) rtcp_in: gst::Pad,
}

/// Links `pads` to the network for `stream` on `local_ip`.
/// `keyframe` asks the encoder of the stream's feed for a keyframe (video).
pub(super) fn connect(
    pipeline: &gst::Pipeline,
    pads: SessionPads,
    stream: &SipStream,
    ports: &PortPair,
    local_ip: IpAddr,
    dtls_state: &Arc<DtlsState>,
    keyframe: Option<Arc<dyn Fn() + Send + Sync>>,
) -> Result<(), MediaError> {
    match &stream.protection {
        Protection::Plain => {
            let rtp = Socket::take(pipeline, &ports.rtp, local_ip, stream.remote_rtp)?;
            let rtcp = Socket::take(pipeline, &ports.rtcp, local_ip, stream.remote_rtcp)?;
            rtp.receive_as(rtp_caps("application/x-rtp", stream));
            rtcp.receive_as(gst::Caps::new_empty_simple("application/x-rtcp"));
            link_pads(&rtp.received()?, &pads.rtp_in)?;
            link_pads(&rtcp.received()?, &pads.rtcp_in)?;
            if let Some(rtp_out) = &pads.rtp_out {
                link_pads(rtp_out, &rtp.to_send()?)?;
            }
            link_pads(&pads.rtcp_out, &rtcp.to_send()?)
        }
        Protection::Sdes { send, receive } => {
            let rtp = Socket::take(pipeline, &ports.rtp, local_ip, stream.remote_rtp)?;
            let rtcp = Socket::take(pipeline, &ports.rtcp, local_ip, stream.remote_rtcp)?;
            rtp.receive_as(rtp_caps("application/x-srtp", stream));
            rtcp.receive_as(gst::Caps::new_empty_simple("application/x-srtcp"));
            sdes(pipeline, &pads, send, receive, &rtp, &rtcp)
        }
        Protection::Dtls {
            client,
            remote_fingerprint,
            rtcp_mux,
        } => {
            let kind = stream_name(stream.feed);
            let association = |name: String, on_open| DtlsAssociation {
                client: *client,
                expected: *remote_fingerprint,
                name,
                on_open,
                state: dtls_state,
            };
            let rtp = Socket::take(pipeline, &ports.rtp, local_ip, stream.remote_rtp)?;
            let rtp_carried = (&pads.rtp_in, pads.rtp_out.as_ref());
            let rtcp_carried = (&pads.rtcp_in, &pads.rtcp_out);
            if *rtcp_mux {
                return association(format!("{kind} RTP and RTCP"), keyframe).start(
                    pipeline,
                    &rtp,
                    Some(rtp_carried),
                    Some(rtcp_carried),
                );
            }
            // RTCP on a port of its own has a DTLS association of its own (RFC 5764 4.1).
            association(format!("{kind} RTP"), keyframe).start(
                pipeline,
                &rtp,
                Some(rtp_carried),
                None,
            )?;
            let rtcp = Socket::take(pipeline, &ports.rtcp, local_ip, stream.remote_rtcp)?;
            association(format!("{kind} RTCP"), None).start(
                pipeline,
                &rtcp,
                None,
                Some(rtcp_carried),
            )
        }
    }
}

/// One DTLS association of a stream, before it is started on its port.
struct DtlsAssociation<'a> {
    client: bool,
    expected: [u8; FINGERPRINT_LEN],
    /// `audio RTP`…, for the logs and reasons.
    name: String,
    on_open: Option<Arc<dyn Fn() + Send + Sync>>,
    state: &'a Arc<DtlsState>,
}

impl DtlsAssociation<'_> {
    /// A dtlssrtpenc/dtlssrtpdec pair on `socket` carrying `rtp` (rtpbin's RTP in, and out when
    /// the room sends) and `rtcp` (in, out); what it does not carry is dropped.
    fn start(
        self,
        pipeline: &gst::Pipeline,
        socket: &Socket,
        rtp: Option<(&gst::Pad, Option<&gst::Pad>)>,
        rtcp: Option<(&gst::Pad, &gst::Pad)>,
    ) -> Result<(), MediaError> {
        let (encoder, decoder) = dtls_pair(pipeline, self.client)?;
        link_pads(&socket.received()?, &static_pad(&decoder, "sink")?)?;
        link_pads(&static_pad(&encoder, "src")?, &socket.to_send()?)?;
        let mut valves = Vec::new();
        match rtp {
            Some((rtp_in, rtp_out)) => {
                link_pads(&static_pad(&decoder, "rtp_src")?, rtp_in)?;
                if let Some(rtp_out) = rtp_out {
                    valves.push(through_valve(pipeline, rtp_out, &encoder, "rtp_sink_0")?);
                }
            }
            None => discard(pipeline, &static_pad(&decoder, "rtp_src")?)?,
        }
        match rtcp {
            Some((rtcp_in, rtcp_out)) => {
                link_pads(&static_pad(&decoder, "rtcp_src")?, rtcp_in)?;
                valves.push(through_valve(pipeline, rtcp_out, &encoder, "rtcp_sink_0")?);
            }
            None => discard(pipeline, &static_pad(&decoder, "rtcp_src")?)?,
        }
        dtls::watch(
            Association {
                encoder: &encoder,
                decoder: &decoder,
                valves,
                expected: self.expected,
                name: self.name,
                on_open: self.on_open,
            },
            self.state,
        );
        Ok(())
    }
}

/// The RTP clock rate of `stream`, Hz.
pub(super) fn clock_rate(stream: &SipStream) -> u32 {
    match stream.feed.kind() {
        MediaKind::Video => 90000,
        MediaKind::Audio if stream.encoding == "OPUS" => 48000,
        // G.722's RTP clock is 8 kHz too (RFC 3551).
        MediaKind::Audio => 8000,
    }
}

/// The caps the far end's RTP has in `stream`.
pub(super) fn rtp_caps(name: &str, stream: &SipStream) -> gst::Caps {
    let media = match stream.feed.kind() {
        MediaKind::Video => "video",
        MediaKind::Audio => "audio",
    };
    gst::Caps::builder(name)
        .field("media", media)
        .field("clock-rate", clock_rate(stream) as i32)
        .field("encoding-name", stream.encoding.as_str())
        .field("payload", i32::from(stream.payload_type))
        .build()
}

/// One of the room's UDP ports: received on by its (already bound) udpsrc, sent from by a
/// udpsink on the same socket.
struct Socket {
    source: gst::Element,
    sink: gst::Element,
}

impl Socket {
    fn take(
        pipeline: &gst::Pipeline,
        source: &gst::Element,
        local_ip: IpAddr,
        remote: SocketAddr,
    ) -> Result<Socket, MediaError> {
        let source = source.clone();
        let sink = make("udpsink")?;
        sink.set_property("host", remote.ip().to_string());
        sink.set_property("port", i32::from(remote.port()));
        sink.set_property("sync", false);
        sink.set_property("async", false);
        pipeline.add_many([&source, &sink]).map_err(build_error)?;
        // udpsrc bound its socket on the way to READY (SipPorts); the sink sends from it.
        let socket = source.property_value("used-socket");
        sink.set_property_from_value(
            if local_ip.is_ipv4() {
                "socket"
            } else {
                "socket-v6"
            },
            &socket,
        );
        sink.set_property("close-socket", false);
        Ok(Socket { source, sink })
    }

    fn receive_as(&self, caps: gst::Caps) {
        self.source.set_property("caps", caps);
    }

    fn received(&self) -> Result<gst::Pad, MediaError> {
        static_pad(&self.source, "src")
    }

    fn to_send(&self) -> Result<gst::Pad, MediaError> {
        static_pad(&self.sink, "sink")
    }
}

fn sdes(
    pipeline: &gst::Pipeline,
    pads: &SessionPads,
    send: &[u8; SRTP_KEY_LEN],
    receive: &[u8; SRTP_KEY_LEN],
    rtp: &Socket,
    rtcp: &Socket,
) -> Result<(), MediaError> {
    let session = pads.session;
    let srtpenc = make("srtpenc")?;
    srtpenc.set_property("key", gst::Buffer::from_slice(send.to_vec()));
    for (property, value) in [
        ("rtp-cipher", "aes-128-icm"),
        ("rtp-auth", "hmac-sha1-80"),
        ("rtcp-cipher", "aes-128-icm"),
        ("rtcp-auth", "hmac-sha1-80"),
    ] {
        srtpenc.set_property_from_str(property, value);
    }
    let srtpdec = make("srtpdec")?;
    let caps = gst::Caps::builder("application/x-srtp")
        .field("srtp-key", gst::Buffer::from_slice(receive.to_vec()))
        .field("srtp-cipher", "aes-128-icm")
        .field("srtp-auth", "hmac-sha1-80")
        .field("srtcp-cipher", "aes-128-icm")
        .field("srtcp-auth", "hmac-sha1-80")
        .build();
    // Every SSRC the far end uses gets the key of its SDP.
    srtpdec.connect("request-key", false, move |_| Some(caps.to_value()));
    pipeline
        .add_many([&srtpenc, &srtpdec])
        .map_err(build_error)?;
    if let Some(rtp_out) = &pads.rtp_out {
        link_pads(
            rtp_out,
            &request_pad(&srtpenc, &format!("rtp_sink_{session}"))?,
        )?;
        link_pads(
            &static_pad(&srtpenc, &format!("rtp_src_{session}"))?,
            &rtp.to_send()?,
        )?;
    }
    link_pads(
        &pads.rtcp_out,
        &request_pad(&srtpenc, &format!("rtcp_sink_{session}"))?,
    )?;
    link_pads(
        &static_pad(&srtpenc, &format!("rtcp_src_{session}"))?,
        &rtcp.to_send()?,
    )?;
    link_pads(&rtp.received()?, &static_pad(&srtpdec, "rtp_sink")?)?;
    link_pads(&rtcp.received()?, &static_pad(&srtpdec, "rtcp_sink")?)?;
    link_pads(&static_pad(&srtpdec, "rtp_src")?, &pads.rtp_in)?;
    link_pads(&static_pad(&srtpdec, "rtcp_src")?, &pads.rtcp_in)
}

/// A dtlssrtpenc/dtlssrtpdec pair of one association, the room's certificate in the decoder.
fn dtls_pair(
    pipeline: &gst::Pipeline,
    client: bool,
) -> Result<(gst::Element, gst::Element), MediaError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let connection = format!("roomd-sip-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let certificate = dtls::room_certificate()?;
    let decoder = make("dtlssrtpdec")?;
    // Without `pem`, every decoder takes GStreamer's one generated certificate (setting a PEM
    // of our own makes 1.22's agent drop it, and the room would show none). Checked here, so
    // that the fingerprint in the room's SDP is the certificate it shows.
    let shown = decoder
        .property::<Option<String>>("pem")
        .and_then(|pem| dtls::fingerprint_of_pem(&pem));
    if shown.as_ref() != Some(certificate.fingerprint()) {
        return Err(build_error(
            "the DTLS decoder's certificate is not the one the room's SDP names",
        ));
    }
    decoder.set_property("connection-id", &connection);
    let encoder = make("dtlssrtpenc")?;
    encoder.set_property("connection-id", &connection);
    encoder.set_property("is-client", client);
    pipeline
        .add_many([&decoder, &encoder])
        .map_err(build_error)?;
    Ok((encoder, decoder))
}

/// `from` → a valve, closed until the far end's certificate is checked → `pad` of `encoder`.
fn through_valve(
    pipeline: &gst::Pipeline,
    from: &gst::Pad,
    encoder: &gst::Element,
    pad: &str,
) -> Result<gst::Element, MediaError> {
    let valve = make("valve")?;
    valve.set_property("drop", true);
    pipeline.add(&valve).map_err(build_error)?;
    link_pads(from, &static_pad(&valve, "sink")?)?;
    link_pads(&static_pad(&valve, "src")?, &request_pad(encoder, pad)?)?;
    Ok(valve)
}

/// What arrives on `pad` (RTCP on the RTP port, or the reverse) is dropped.
fn discard(pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<(), MediaError> {
    let sink = make("fakesink")?;
    sink.set_property("sync", false);
    sink.set_property("async", false);
    pipeline.add(&sink).map_err(build_error)?;
    link_pads(pad, &static_pad(&sink, "sink")?)
}
