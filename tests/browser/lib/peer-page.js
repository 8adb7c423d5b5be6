// Runs inside Chromium: the WebRTC side of a test participant. The node driver does all HTTP
// signalling itself (so it can verify the servers' certificates with the test CA) and calls these
// functions through page.evaluate; the page only holds media and RTCPeerConnections.
"use strict";

(() => {
  const connections = new Map();
  let camera = null;
  // How long to wait for ICE gathering: offers and answers go out with all candidates in them
  // (no trickle), and on a test network gathering finishes in milliseconds.
  const GATHERING_TIMEOUT_MS = 3000;

  async function localMedia() {
    if (camera === null) {
      // --use-fake-device-for-media-stream turns these into Chromium's test pattern and beep.
      camera = await navigator.mediaDevices.getUserMedia({
        audio: true,
        video: { width: 640, height: 360, frameRate: 30 },
      });
    }
    return camera;
  }

  function gathered(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, GATHERING_TIMEOUT_MS);
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }

  function connection(id) {
    const pc = connections.get(id);
    if (!pc) throw new Error(`no peer connection ${id}`);
    return pc;
  }

  function fresh(id) {
    if (connections.has(id)) connections.get(id).close();
    // No ICE servers: test peers reach each other on their host addresses only.
    const pc = new RTCPeerConnection({ iceServers: [] });
    connections.set(id, pc);
    return pc;
  }

  // An offer from this page: `send` adds the camera and microphone (only the `kinds` given, when
  // given), `receive` asks for audio and video from the other side. With `e2ee` (the page's
  // window.e2ee, webui/src/e2ee/meeting.ts, is set) every frame sent goes through its frame
  // transform, set before the track sends anything, video as VP8 (see meeting.ts), and a data
  // channel carries the key agreement's messages.
  async function offer(id, { send, receive, kinds, e2ee }) {
    const pc = fresh(id);
    if (send) {
      const media = await localMedia();
      for (const track of media.getTracks().filter((t) => !kinds || kinds.includes(t.kind))) {
        const transceiver = pc.addTransceiver(track, { direction: receive ? "sendrecv" : "sendonly", streams: [media] });
        if (e2ee) {
          transceiver.sender.transform = window.e2ee.senderTransform(track.kind);
          if (track.kind === "video") {
            const codecs = RTCRtpSender.getCapabilities("video").codecs;
            transceiver.setCodecPreferences(codecs.filter((c) => c.mimeType === "video/VP8"));
          }
        }
      }
      if (e2ee) window.e2ee.attachSendChannel(pc.createDataChannel("roomd-e2ee"));
    } else if (receive) {
      pc.addTransceiver("audio", { direction: "recvonly" });
      pc.addTransceiver("video", { direction: "recvonly" });
    }
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    return pc.localDescription.sdp;
  }

  // The other side's answer to `offer`.
  async function accept(id, sdp) {
    await connection(id).setRemoteDescription({ type: "answer", sdp });
  }

  // An answer to an offer from the other side (Janus subscriptions); `send` adds the camera.
  // With `e2ee` (the participant id of the sender) what arrives goes through window.e2ee's
  // frame transforms and its data channel to the key agreement.
  async function answer(id, sdp, { send, e2ee }) {
    const pc = fresh(id);
    if (e2ee) pc.addEventListener("datachannel", (event) => window.e2ee.attachReceiveChannel(e2ee, event.channel));
    await pc.setRemoteDescription({ type: "offer", sdp });
    if (e2ee) {
      for (const transceiver of pc.getTransceivers()) {
        const kind = transceiver.receiver.track.kind;
        transceiver.receiver.transform = window.e2ee.receiverTransform(e2ee, kind);
      }
      // Janus (1.1) relays a publisher's data to a Chromium subscriber only once a channel is
      // open on that subscription: without one of our own, Janus never says "Data channel
      // available" and nothing arrives (measured). It may relay on this channel (same label)
      // or open another; both are heard.
      window.e2ee.attachReceiveChannel(e2ee, pc.createDataChannel("roomd-e2ee"));
    }
    if (send) {
      const media = await localMedia();
      for (const track of media.getTracks()) pc.addTrack(track, media);
    }
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    return pc.localDescription.sdp;
  }

  // Stops (`on` false) or resumes sending the local `kind` track on connection `id`: with no
  // track, Chromium sends no packets for it, as a participant who muted it.
  async function send(id, kind, on) {
    const transceiver = connection(id)
      .getTransceivers()
      .find((t) => t.receiver.track.kind === kind);
    if (!transceiver) throw new Error(`no ${kind} on peer connection ${id}`);
    const track = on ? (await localMedia()).getTracks().find((t) => t.kind === kind) : null;
    await transceiver.sender.replaceTrack(track);
  }

  function close(id) {
    const pc = connections.get(id);
    if (pc) {
      pc.close();
      connections.delete(id);
    }
  }

  // The figures tests assert on, per connection: RTP streams in and out, and the ICE pair in use
  // (so a test can see that media did not go over loopback).
  async function stats() {
    const result = [];
    for (const [id, pc] of connections) {
      const report = await pc.getStats();
      const byId = new Map();
      report.forEach((entry) => byId.set(entry.id, entry));
      const codecOf = (entry) => byId.get(entry.codecId)?.mimeType ?? "";
      const inbound = [];
      const outbound = [];
      let pair = null;
      report.forEach((entry) => {
        if (entry.type === "inbound-rtp") {
          inbound.push({
            kind: entry.kind,
            codec: codecOf(entry),
            packets_received: entry.packetsReceived ?? 0,
            packets_lost: entry.packetsLost ?? 0,
            bytes_received: entry.bytesReceived ?? 0,
            frames_decoded: entry.framesDecoded ?? 0,
            frame_width: entry.frameWidth ?? 0,
            frame_height: entry.frameHeight ?? 0,
          });
        } else if (entry.type === "outbound-rtp") {
          outbound.push({
            kind: entry.kind,
            codec: codecOf(entry),
            packets_sent: entry.packetsSent ?? 0,
            bytes_sent: entry.bytesSent ?? 0,
            frames_encoded: entry.framesEncoded ?? 0,
          });
        } else if (entry.type === "transport" && entry.selectedCandidatePairId) {
          const selected = byId.get(entry.selectedCandidatePairId);
          const local = selected && byId.get(selected.localCandidateId);
          const remote = selected && byId.get(selected.remoteCandidateId);
          if (local && remote) {
            pair = {
              local: `${local.address}:${local.port}`,
              remote: `${remote.address}:${remote.port}`,
              protocol: local.protocol,
            };
          }
        }
      });
      result.push({
        peer: id,
        state: pc.connectionState,
        ice: pc.iceConnectionState,
        pair,
        inbound,
        outbound,
      });
    }
    return result;
  }

  window.peer = { offer, accept, answer, send, close, stats };
})();
