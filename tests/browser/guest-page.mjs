// Guests on roomd's shipped guest page (webui/src/guest), in Debian's Chromium: one browser,
// one context (own fake camera and microphone) per guest. The page is used as a person would:
// fill in name and PIN, press Join; the driver only watches what each page shows and plays, and
// reports it as JSON lines on stdout (see tests/src/browser.rs). roomd's certificate is
// verified: Chromium trusts exactly the public key of --ca (roomd's self-signed cert.pem).
//
//   node guest-page.mjs --url https://10.77.1.2:8443/join/<meeting-id> --pin 1234
//        --names Alice,Bob,Carol --ca cert.pem [--report-ms 1000]
//
// Lines: {"event":"ready"} once every page shows the join form; every --report-ms
// {"event":"guests","guests":[{"name","phase","room":{"frames","muted","camera_off","audio_packets"},
// "others":[{"slot","name","talking","audio","video","hand","frames","width","height","audio_packets","audio_energy",
// "video_rtp":{"packets","decoded","keyframes","plis"}}]}]}, where
// `chat` the chat as shown ([{"from","text"}], text as the page renders it), `content` the
// room's shared content tile ({"frames","width","height"}, null when not shown),
// `phase` is form|lobby|joined (or the page's status text), `error` the page's error banner, `frames` are the frames the tile's <video>
// has shown, and audio figures are the slot's inbound RTP audio (packets, total energy).
//
// Commands, one JSON object a line on stdin, answered with {"event":"done","command":…}:
// {"guest":"Bob","press":"mute"|"camera"|"hand"|"leave"} presses that button on Bob's page;
// {"guest":"Bob","join":true} loads the page again and joins (a guest who left comes back);
// {"guest":"Bob","chat":"text"} types the text in Bob's chat and sends it;
// {"guest":"Bob","raw":["…",…]} sends those messages on Bob's data channel to the room, as a
// hostile page would (not through the page);
// {"guest":"Alice","moderate":"ask-mute"|"make-presenter"|"take-presenter"|"remove","on":"Bob"}
// presses that button on Bob's tile on Alice's page (a moderator's);
// {"guest":"Alice","press":"lock"|"end"|"accept-mute"|"share"} presses the moderator's lock or
// "end for everyone", the button of a request to mute, or "Share a window" (Chromium's fake
// picker gives a capture of the tab: headless Chromium has no windows);
// {"guest":"Alice","offer_file":{"to":"Bob","bytes":N}} offers a file of N random bytes to Bob
// (answered with its "sha256" as computed here); {"guest":"Bob","press":"accept-file"} accepts
// the first offer Bob's page shows; each guest's line has `transfers`
// ([{"direction","state","name","size","bytes","sha256","received","peer"}]);
// {"guest":"Carol","force_share":true} shares on Carol's window line without the page (whose
// button only a presenter has), as a hostile page would.
// Each guest's line also has `roles` ({"moderator","presenter"}), `locked`, `lobby` (the names a
// moderator's page lists), `mute_request` (the request's text, or null), `muted` (the page's own
// mute button), per other guest `moderator`, `presenter` and `encryption` (hop-by-hop|none, as
// the tile says), and `encryption` ({"link","cipher"}: what the page says of its own link).
// {"guest":"Bob","transports":true} is answered with `transports` ([{"connection","dtls","cipher"}]:
// the DTLS transports of Bob's connections, read here from getStats, apart from the page).

import { createHash, randomBytes, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

import { closeOnExit, fail, launchChromium, report, sleep } from "./lib/driver.mjs";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    pin: { type: "string", default: "" },
    names: { type: "string", default: "Guest" },
    ca: { type: "string" },
    "report-ms": { type: "string", default: "1000" },
  },
});
if (!args.url || !args.ca) fail("usage: --url https://<room>/join/<meeting-id> --ca PEM [--pin P] [--names A,B]");

// Chromium takes a certificate whose public key hashes to this, and no other.
const spki = new X509Certificate(readFileSync(args.ca)).publicKey.export({ type: "spki", format: "der" });
const pin = createHash("sha256").update(spki).digest("base64");

const browser = await launchChromium(["--autoplay-policy=no-user-gesture-required", `--ignore-certificate-errors-spki-list=${pin}`]);
closeOnExit(async () => {
  for (const guest of guests.values()) {
    await guest.page.click('[data-testid="guest-leave"]', { timeout: 2000 }).catch(() => {});
  }
  await browser.close().catch(() => {});
});

// Keeps every RTCPeerConnection the page makes, so that the driver can read its statistics,
// and every data channel, so that it can send what a hostile page would.
function watchConnections() {
  const Native = window.RTCPeerConnection;
  window.__connections = [];
  window.__channels = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...a) {
      super(...a);
      window.__connections.push(this);
    }
    createDataChannel(...a) {
      const channel = super.createDataChannel(...a);
      window.__channels.push(channel);
      return channel;
    }
  };
}

async function open(name) {
  const context = await browser.newContext({ permissions: ["camera", "microphone"], locale: "en-GB", viewport: { width: 1440, height: 900 } });
  await context.addInitScript(watchConnections);
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") report("console", { guest: name, text: message.text() });
  });
  await join(page, name);
  return { context, page };
}

async function join(page, name) {
  // Other tests on the machine (and this one's own network) add and remove interfaces;
  // Chromium aborts a navigation under way when they change (ERR_NETWORK_CHANGED): load again.
  for (let attempt = 1; ; attempt++) {
    try {
      await page.goto(args.url);
      break;
    } catch (e) {
      if (attempt >= 5 || !/ERR_NETWORK_CHANGED/.test(e.message)) throw e;
      await sleep(200);
    }
  }
  await page.waitForSelector('[data-testid="guest-join"]');
  await page.fill("#guest-name", name);
  if (args.pin) await page.fill("#guest-pin", args.pin);
  await page.click('[data-testid="guest-join"]');
}

// What one page shows and plays now (runs in the page).
function observe() {
  const phase = document.querySelector('[data-testid="guest-joined"]')
    ? "joined"
    : document.querySelector('[data-testid="guest-lobby"]')
      ? "lobby"
      : document.querySelector('[data-testid="guest-join"]')
        ? "form"
        : (document.querySelector(".card [role=status]")?.textContent ?? "");
  const frames = (video) => video?.getVideoPlaybackQuality().totalVideoFrames ?? 0;
  const others = [...document.querySelectorAll('[data-testid="other-guest"]')].map((figure) => ({
    slot: Number(figure.dataset.slot),
    name: figure.dataset.name,
    talking: figure.dataset.talking === "true",
    audio: figure.dataset.audio,
    hand: figure.dataset.hand === "true",
    moderator: figure.dataset.moderator === "true",
    presenter: figure.dataset.presenter === "true",
    encryption: figure.dataset.encryption,
    video: figure.dataset.video,
    frames: frames(figure.querySelector("video")),
    width: figure.querySelector("video")?.videoWidth ?? 0,
    height: figure.querySelector("video")?.videoHeight ?? 0,
  }));
  const error = document.querySelector(".error-banner")?.textContent ?? undefined;
  const room = {
    frames: frames(document.querySelector("figure.remote video")),
    muted: document.querySelector('[data-testid="room-muted"]') !== null,
    camera_off: document.querySelector('[data-testid="room-camera-off"]') !== null,
  };
  const shared = document.querySelector('[data-testid="room-content"] video');
  const content = shared ? { frames: frames(shared), width: shared.videoWidth, height: shared.videoHeight, from: shared.closest("figure").dataset.from } : null;
  const sharing = document.querySelector('[data-testid="own-share"]') !== null;
  // The chat as the page shows it: the sender, and the text as text (markup would be gone).
  const chat = [...document.querySelectorAll('[data-testid="chat-messages"] li')].map((li) => ({
    from: li.dataset.from,
    text: li.textContent,
  }));
  const roleLine = document.querySelector('[data-testid="guest-roles"]');
  const roles = { moderator: roleLine?.dataset.moderator === "true", presenter: roleLine?.dataset.presenter === "true" };
  const locked = document.querySelector('[data-testid="meeting-locked"]') !== null;
  const lobby = [...document.querySelectorAll('[data-testid="moderation-lobby"] li')].map((li) => li.dataset.name);
  const mute_request = document.querySelector('[data-testid="mute-request"] p')?.textContent ?? null;
  const muted = document.querySelector('[data-testid="guest-mute"]')?.getAttribute("aria-pressed") === "true";
  const transfers = [...document.querySelectorAll('[data-testid="transfer"]')].map((li) => ({
    direction: li.dataset.direction,
    state: li.dataset.state,
    name: li.dataset.name,
    size: Number(li.dataset.size),
    bytes: Number(li.dataset.bytes),
    sha256: li.dataset.sha256,
    received: li.dataset.received,
    peer: li.dataset.peer,
  }));
  const linkLine = document.querySelector('[data-testid="guest-encryption"]');
  const encryption = linkLine ? { link: linkLine.dataset.link, cipher: linkLine.dataset.cipher } : null;
  return { phase, error, room, content, others, chat, roles, locked, lobby, mute_request, muted, sharing, transfers, encryption };
}

// The DTLS transports of each of the page's open connections, read here from getStats, apart
// from what the page shows: [{"connection","dtls","cipher"}] (`connection`: the connection's
// own state).
async function transports() {
  const found = [];
  for (const pc of (window.__connections ?? []).filter((pc) => pc.connectionState !== "closed")) {
    (await pc.getStats()).forEach((s) => {
      if (s.type === "transport") found.push({ connection: pc.connectionState, dtls: s.dtlsState ?? "", cipher: s.srtpCipher ?? "" });
    });
  }
  return found;
}

// Inbound audio per slot of the WHEP connection (0: the room), from its receivers' statistics.
async function audioBySlot() {
  const whep = (window.__connections ?? []).filter((pc) => pc.connectionState !== "closed").find((pc) => pc.getTransceivers().length > 2);
  if (!whep) return {};
  const slots = {};
  const transceivers = whep.getTransceivers();
  for (let i = 0; i < transceivers.length; i++) {
    const kind = transceivers[i].receiver.track.kind;
    const stats = await transceivers[i].receiver.getStats();
    const slot = (slots[Math.floor(i / 2)] ??= {});
    stats.forEach((s) => {
      if (s.type !== "inbound-rtp") return;
      if (kind === "audio") Object.assign(slot, { packets: s.packetsReceived ?? 0, energy: s.totalAudioEnergy ?? 0 });
      else slot.video = { packets: s.packetsReceived ?? 0, decoded: s.framesDecoded ?? 0, keyframes: s.keyFramesDecoded ?? 0, plis: s.pliCount ?? 0 };
    });
  }
  return slots;
}

const names = args.names.split(",").filter(Boolean);
const guests = new Map();
for (const name of names) guests.set(name, await open(name).catch((e) => fail(`${name}'s page: ${e.message}`)));
report("ready");

createInterface({ input: process.stdin }).on("line", async (line) => {
  try {
    const command = JSON.parse(line);
    const guest = guests.get(command.guest);
    if (!guest) throw new Error(`no guest ${command.guest}`);
    if (command.join) {
      await join(guest.page, command.guest);
    } else if (Array.isArray(command.raw)) {
      // Sent on the page's own channel to the room, as they are: not through the page.
      const sent = await guest.page.evaluate((messages) => {
        const channel = window.__channels.filter((c) => c.readyState === "open").at(-1);
        if (!channel) return 0;
        messages.forEach((m) => channel.send(m));
        return messages.length;
      }, command.raw);
      if (sent !== command.raw.length) throw new Error("no open data channel");
    } else if (typeof command.chat === "string") {
      await guest.page.fill('[data-testid="chat-input"]', command.chat);
      await guest.page.click('[data-testid="chat-send"]');
    } else if (typeof command.moderate === "string") {
      await guest.page.click(`[data-testid="other-guest"][data-name="${command.on}"] [data-testid="${command.moderate}"]`);
    } else if (command.force_share) {
      const shared = await guest.page.evaluate(async () => {
        const whip = window.__connections.filter((pc) => pc.connectionState !== "closed").find((pc) => pc.getTransceivers().length === 3);
        if (!whip) return false;
        const stream = await navigator.mediaDevices.getDisplayMedia({ video: true });
        const sender = whip.getTransceivers()[2].sender;
        await sender.replaceTrack(stream.getVideoTracks()[0]);
        // Packets leave for the room: what it does with them is its own decision.
        await new Promise((resolve) => setTimeout(resolve, 3000));
        let packets = 0;
        (await sender.getStats()).forEach((s) => {
          if (s.type === "outbound-rtp") packets += s.packetsSent ?? 0;
        });
        return packets;
      });
      if (!shared) throw new Error("no WHIP connection with a window line, or no packet sent on it");
    } else if (command.transports) {
      report("done", { command, transports: await guest.page.evaluate(transports) });
      return;
    } else if (command.offer_file) {
      const buffer = randomBytes(command.offer_file.bytes);
      const sha256 = createHash("sha256").update(buffer).digest("hex");
      await guest.page.setInputFiles('[data-testid="file-input"]', { name: "minutes.bin", mimeType: "application/octet-stream", buffer });
      await guest.page.selectOption('[data-testid="file-to"]', { label: command.offer_file.to });
      await guest.page.click('[data-testid="file-offer"]');
      report("done", { command, sha256 });
      return;
    } else if (command.press === "accept-file") {
      await guest.page.click('[data-testid="file-accept"]');
    } else if (command.press === "share") {
      await guest.page.click('[data-testid="guest-share"]');
    } else if (command.press === "lock" || command.press === "end") {
      await guest.page.click(`[data-testid="moderation-${command.press}"]`);
    } else if (command.press === "accept-mute") {
      await guest.page.click('[data-testid="mute-request-accept"]');
    } else if (command.press === "leave") {
      await guest.page.click('[data-testid="guest-leave"]');
    } else if (command.press === "mute" || command.press === "camera" || command.press === "hand") {
      await guest.page.click(`[data-testid="guest-${command.press}"]`);
    } else {
      throw new Error(`unknown command ${line}`);
    }
    report("done", { command });
  } catch (error) {
    report("console", { text: `command ${line}: ${error}` });
  }
});

const interval = Number(args["report-ms"]);
for (;;) {
  const states = [];
  for (const [name, { page }] of guests) {
    try {
      const seen = await page.evaluate(observe);
      const audio = await page.evaluate(audioBySlot);
      seen.room.audio_packets = audio[0]?.packets ?? 0;
      for (const other of seen.others) {
        other.audio_packets = audio[other.slot]?.packets ?? 0;
        other.audio_energy = audio[other.slot]?.energy ?? 0;
        other.video_rtp = audio[other.slot]?.video;
      }
      states.push({ name, ...seen });
    } catch (error) {
      states.push({ name, phase: "error", error: String(error) });
    }
  }
  report("guests", { guests: states });
  await new Promise((resolve) => setTimeout(resolve, interval));
}
