// A browser peer for roomd's WebRTC tests: Debian's chromium, headless, as a WHEP viewer
// ("whep": receives audio and video) or a WHIP publisher ("whip": sends a canvas picture and a
// tone). Talks JSON lines: prints {"offer": sdp}, reads {"answer": sdp}, prints {"result": ...}
// (or {"error": ...}) and exits. No network beyond the peer; no STUN server.
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';

const mode = process.argv[2];
if (mode !== 'whep' && mode !== 'whip') {
  console.error('usage: webrtc-peer.mjs whep|whip');
  process.exit(2);
}
const say = (message) => process.stdout.write(JSON.stringify(message) + '\n');

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    // libnice cannot resolve Chromium's mDNS host names: give real addresses.
    '--disable-features=WebRtcHideLocalIpsWithMdns'],
});
try {
  const page = await browser.newPage();
  const offer = await page.evaluate(async (mode) => {
    const pc = new RTCPeerConnection();
    window.pc = pc;
    if (mode === 'whep') {
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.addTransceiver('video', { direction: 'recvonly' });
    } else {
      // A moving picture from a canvas and a tone from WebAudio: no camera permission needed.
      const canvas = document.createElement('canvas');
      canvas.width = 320; canvas.height = 180;
      const g = canvas.getContext('2d');
      let x = 0;
      setInterval(() => {
        g.fillStyle = '#204080'; g.fillRect(0, 0, 320, 180);
        g.fillStyle = '#f0c000'; g.fillRect(x = (x + 5) % 300, 60, 20, 60);
      }, 33);
      const audio = new AudioContext();
      const tone = audio.createOscillator();
      const out = audio.createMediaStreamDestination();
      tone.connect(out); tone.start();
      const stream = new MediaStream([...canvas.captureStream(30).getVideoTracks(),
        ...out.stream.getAudioTracks()]);
      for (const track of stream.getTracks()) {
        pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
      }
    }
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((done) => {
      if (pc.iceGatheringState === 'complete') return done();
      pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && done();
      setTimeout(done, 5000);
    });
    return pc.localDescription.sdp;
  }, mode);
  say({ offer });

  const lines = createInterface({ input: process.stdin });
  const first = await new Promise((resolve) => lines.once('line', resolve));
  const { answer } = JSON.parse(first);
  const result = await page.evaluate(async ({ answer, mode }) => {
    const pc = window.pc;
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    const deadline = Date.now() + 20000;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      const report = await pc.getStats();
      const entries = [...report.values()];
      const codecOf = (s) => report.get(s.codecId)?.mimeType;
      if (mode === 'whep') {
        const video = entries.find((s) => s.type === 'inbound-rtp' && s.kind === 'video');
        const audio = entries.find((s) => s.type === 'inbound-rtp' && s.kind === 'audio');
        if (video?.framesDecoded >= 10 && audio?.packetsReceived > 10) {
          return { connection: pc.connectionState, videoCodec: codecOf(video),
            framesDecoded: video.framesDecoded, width: video.frameWidth,
            height: video.frameHeight, audioCodec: codecOf(audio),
            audioPackets: audio.packetsReceived };
        }
      } else {
        const video = entries.find((s) => s.type === 'outbound-rtp' && s.kind === 'video');
        if (video?.framesEncoded >= 30) {
          return { connection: pc.connectionState, videoCodec: codecOf(video),
            framesEncoded: video.framesEncoded };
        }
      }
    }
    const report = await pc.getStats();
    const seen = [...report.values()].filter((s) => s.type.endsWith('bound-rtp')).map((s) => ({
      type: s.type, kind: s.kind, packetsReceived: s.packetsReceived,
      framesDecoded: s.framesDecoded, framesEncoded: s.framesEncoded,
      keyFramesDecoded: s.keyFramesDecoded, pliCount: s.pliCount, firCount: s.firCount }));
    return { connection: pc.connectionState, timeout: true, seen };
  }, { answer, mode });
  say({ result });
  // Keep sending a little longer for the room to count frames, then end.
  if (mode === 'whip') {
    const rest = await new Promise((resolve) => lines.once('line', resolve));
    void rest;
  }
  lines.close();
} catch (e) {
  say({ error: String(e) });
} finally {
  await browser.close();
}
