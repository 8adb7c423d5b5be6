// Runs inside Chromium, evaluated by janus-participant.mjs --timecode before any connection
// exists: reads the wall-clock stamp roomd's simulated-timecode camera draws into every frame
// (daemon/src/media/timecode.rs) from each received video, and keeps Date.now() minus the
// stamp for each frame shown. Same machine, same clock: that difference is glass to glass.
//
// The stamp: TIMECODE_BITS square blocks along the top edge, each `width / TIMECODE_COLUMNS`
// pixels wide and high, white for 1 and black for 0, most significant bit first; the value is
// the Unix time in milliseconds when the frame left the camera.
"use strict";

(() => {
  const TIMECODE_BITS = 48;
  const TIMECODE_COLUMNS = 64;
  // A decoded stamp further than this from now is a misread (or no stamp at all), not a latency.
  const PLAUSIBLE_MS = 60000;
  const samples = [];
  let unreadable = 0;

  function read(video, canvas, context) {
    const width = video.videoWidth;
    const block = Math.floor(width / TIMECODE_COLUMNS);
    if (block < 2) return null;
    if (canvas.width !== width || canvas.height !== block) {
      canvas.width = width;
      canvas.height = block;
    }
    // Only the top band is drawn: the canvas is as high as one row of blocks.
    context.drawImage(video, 0, 0, width, block, 0, 0, width, block);
    const pixels = context.getImageData(0, 0, width, block).data;
    const y = Math.floor(block / 2);
    let value = 0;
    for (let bit = 0; bit < TIMECODE_BITS; bit += 1) {
      const x = Math.floor((bit + 0.5) * block);
      const at = (y * width + x) * 4;
      const luma = (pixels[at] + pixels[at + 1] + pixels[at + 2]) / 3;
      // Multiplication, not shifts: JavaScript's bit operators work on 32 bits.
      value = value * 2 + (luma >= 128 ? 1 : 0);
    }
    return value;
  }

  function watch(track) {
    const video = document.createElement("video");
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    video.srcObject = new MediaStream([track]);
    document.body.appendChild(video);
    const canvas = document.createElement("canvas");
    const context = canvas.getContext("2d", { willReadFrequently: true });
    const onFrame = () => {
      const shown = Date.now();
      const stamp = read(video, canvas, context);
      if (stamp !== null && Math.abs(shown - stamp) <= PLAUSIBLE_MS) {
        samples.push(shown - stamp);
      } else {
        unreadable += 1;
      }
      if (track.readyState === "live") video.requestVideoFrameCallback(onFrame);
      else video.remove();
    };
    video.requestVideoFrameCallback(onFrame);
    video.play().catch(() => {});
  }

  // peer-page.js creates its connections with `new RTCPeerConnection`; this subclass sees every
  // received video track without changing that script.
  const Original = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Original {
    constructor(...args) {
      super(...args);
      this.addEventListener("track", (event) => {
        if (event.track.kind === "video") watch(event.track);
      });
    }
  };

  // The latencies (ms) and unreadable frames since the last call.
  function take() {
    const taken = { samples: samples.splice(0), unreadable };
    unreadable = 0;
    return taken;
  }

  window.timecode = { take };
})();
