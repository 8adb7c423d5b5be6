// A Chromium participant in a Janus VideoRoom, for roomd's end-to-end tests and meeting
// benchmarks: publishes its fake camera and microphone, subscribes to every other publisher
// (following joins and leaves), and reports JSON lines on stdout (see tests/src/browser.rs).
// Janus's HTTP API is spoken here with plain requests (no janus.js); when Janus goes away the
// participant joins again by itself. For the benchmarks (tests/src/bin/bench-meeting.rs): the
// camera's size and frame rate (--width/--height/--fps, all three), and --timecode: every
// received video is read for the wall-clock stamp roomd draws into its simulated-timecode camera
// (lib/timecode-reader.js), and the glass-to-glass latency of each frame is reported.
//
//   node janus-participant.mjs --janus https://10.77.1.2:8089/janus --room 1234 [--pin 4321]
//        [--name Alice] [--ca ca.pem] [--stats-ms 1000] [--width 1280 --height 720 --fps 30]
//        [--timecode] [--e2ee DIR]
//
// With --e2ee (DIR holds meeting.js and worker.js, webui/src/e2ee bundled by the harness) the
// participant encrypts end to end as the guest pages do (docs/security.md): its key agreement
// runs over the VideoRoom's data channels, its frames through RTCRtpScriptTransform, and it
// reports {"event":"e2ee","state":…,"keyEpoch":…,"participants":[…],"frames":{…},"errors":[…]}
// every second. Its participant id is its publisher id. With --e2ee-wrong-key as well it
// encrypts its frames with a key of its own that it never grants (what a broken or hostile
// participant would do): the others hold its granted key and cannot open its frames.
//
// Commands, one JSON object a line on stdin: {"confirm_sas":"<participant id>"} (with --e2ee),
// what its person's "Code matches" would do, answered with {"event":"sas_confirmed",…};
// {"leave":true} leaves the room as a person hanging up would (Janus tells the others at
// once), answered with {"event":"left"}, and the participant stays out.
//
// Lines: {"event":"pid","pid":…} first (the benchmark adds up the CPU time of the Chromium
// processes under it), {"event":"joined","id":…,"publishers":[…]}, {"event":"published"},
// {"event":"subscribed","feed":…,"display":…}, {"event":"unsubscribed","feed":…},
// {"event":"webrtcup",…}, {"event":"stats","peers":[…]} (each subscription's peer is
// "feed-<feed>"), {"event":"disconnected","reason":…}, {"event":"error",…};
// with --width/--height/--fps {"event":"camera","width":…,"height":…,"fps":…} once the camera is
// open, and with --timecode {"event":"latency","samples":[ms,…],"unreadable":n} every second.

import { randomUUID } from "node:crypto";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { closeOnExit, fail, launch, report, reportStats, request, sleep } from "./lib/driver.mjs";

const TIMECODE_READER = readFileSync(fileURLToPath(new URL("./lib/timecode-reader.js", import.meta.url)), "utf8");

const { values: args } = parseArgs({
  options: {
    janus: { type: "string" },
    room: { type: "string" },
    pin: { type: "string" },
    name: { type: "string", default: "chromium" },
    ca: { type: "string" },
    "stats-ms": { type: "string", default: "1000" },
    width: { type: "string" },
    height: { type: "string" },
    fps: { type: "string" },
    timecode: { type: "boolean", default: false },
    e2ee: { type: "string" },
    "e2ee-wrong-key": { type: "boolean", default: false },
  },
});
if (!args.janus || !args.room) fail("usage: --janus URL --room N [--pin P] [--name N] [--ca PEM]");
const room = Number(args.room);
if (!Number.isInteger(room)) fail(`--room must be an integer, not ${args.room}`);
// The camera as lib/peer-page.js opens it (640x360 at Chromium's 20 fps), unless all three
// of --width, --height and --fps are given.
const sized = [args.width, args.height, args.fps].filter((v) => v !== undefined).length;
if (sized !== 0 && sized !== 3) fail("give all of --width, --height and --fps, or none");
const camera = sized === 3
  ? { width: Number(args.width), height: Number(args.height), frameRate: Number(args.fps) }
  : null;
for (const [name, value] of Object.entries(camera ?? {})) {
  if (!Number.isInteger(value) || value <= 0) fail(`--${name} must be a positive integer`);
}
const REJOIN_DELAY_MS = 1000;
// The stay in the room now (set by participate), for the leave command; and whether the
// participant left for good.
let stay = null;
let gone = false;
const E2EE = args.e2ee
  ? {
      meeting: readFileSync(`${args.e2ee}/meeting.js`, "utf8"),
      worker: readFileSync(`${args.e2ee}/worker.js`, "utf8"),
    }
  : null;
const LATENCY_REPORT_MS = 1000;

// One Janus session: its long poll delivers events to the waiting transactions and handlers.
class JanusSession {
  constructor(base) {
    this.base = base.replace(/\/$/, "");
    this.pending = new Map();
    this.handlers = new Map();
    this.closed = null;
  }

  async post(path, body) {
    const answer = await request(`${this.base}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      ca: args.ca,
    });
    if (answer.status !== 200) throw new Error(`POST ${path}: HTTP ${answer.status}: ${answer.body}`);
    const reply = JSON.parse(answer.body);
    if (reply.janus === "error") throw new Error(`Janus ${body.janus}: ${JSON.stringify(reply.error)}`);
    return reply;
  }

  async create() {
    const reply = await this.post("", { janus: "create", transaction: randomUUID() });
    this.id = reply.data.id;
    this.closed = this.poll();
  }

  async attach() {
    const reply = await this.post(`/${this.id}`, {
      janus: "attach",
      plugin: "janus.plugin.videoroom",
      transaction: randomUUID(),
    });
    return reply.data.id;
  }

  // Sends a plugin message and resolves with the plugin's asynchronous event (and its jsep).
  async message(handle, body, jsep) {
    const transaction = randomUUID();
    const event = new Promise((resolve, reject) => this.pending.set(transaction, { resolve, reject }));
    const reply = await this.post(`/${this.id}/${handle}`, { janus: "message", transaction, body, jsep });
    if (reply.janus === "success") {
      this.pending.delete(transaction);
      return { data: reply.plugindata?.data ?? {}, jsep: reply.jsep };
    }
    const { data, jsep: answer } = await event;
    if (data.error) throw new Error(`videoroom ${body.request}: ${data.error} (${data.error_code})`);
    return { data, jsep: answer };
  }

  // The long poll: also what keeps the session alive. Ends (rejecting all waiters) when Janus
  // cannot be reached any more.
  async poll() {
    try {
      for (;;) {
        const answer = await request(`${this.base}/${this.id}?maxev=10&rid=${Date.now()}`, { ca: args.ca });
        if (answer.status !== 200) throw new Error(`long poll: HTTP ${answer.status}`);
        const events = [].concat(JSON.parse(answer.body));
        for (const event of events) this.dispatch(event);
      }
    } catch (error) {
      for (const { reject } of this.pending.values()) reject(error);
      this.pending.clear();
      return error;
    }
  }

  dispatch(event) {
    if (event.janus === "keepalive") return;
    if (event.janus === "error" && event.error?.code === 458) {
      throw new Error("Janus forgot this session");
    }
    const waiter = event.transaction && this.pending.get(event.transaction);
    if (waiter && event.janus === "event") {
      this.pending.delete(event.transaction);
      waiter.resolve({ data: event.plugindata?.data ?? {}, jsep: event.jsep });
      return;
    }
    const handler = this.handlers.get(event.sender);
    if (handler) handler(event);
  }
}

// Joins the room, publishes and subscribes; resolves when the session ends.
async function participate(page) {
  const janus = new JanusSession(args.janus);
  await janus.create();
  const subscriptions = new Map();
  const self = { id: null };

  const subscribe = async (feed, display) => {
    if (feed === self.id || subscriptions.has(feed)) return;
    subscriptions.set(feed, null);
    const handle = await janus.attach();
    subscriptions.set(feed, handle);
    janus.handlers.set(handle, (event) => {
      if (event.janus === "webrtcup") report("webrtcup", { feed });
    });
    const { jsep } = await janus.message(handle, {
      request: "join",
      ptype: "subscriber",
      room,
      pin: args.pin,
      streams: [{ feed }],
    });
    if (!jsep) throw new Error(`subscribing to ${feed}: Janus sent no offer`);
    const sdp = await page.evaluate(([id, offer, e2ee]) => window.peer.answer(id, offer, { send: false, e2ee }), [
      `feed-${feed}`,
      jsep.sdp,
      E2EE ? String(feed) : null,
    ]);
    await janus.message(handle, { request: "start", room }, { type: "answer", sdp });
    report("subscribed", { feed, display });
    await received();
  };

  // The key agreement follows whom this participant receives.
  const received = async () => {
    if (!E2EE) return;
    const feeds = [...subscriptions.keys()].map(String);
    await page.evaluate((feeds) => window.e2ee.setReceived(feeds), feeds);
  };

  const unsubscribe = async (feed) => {
    const handle = subscriptions.get(feed);
    if (handle === undefined) return;
    subscriptions.delete(feed);
    await page.evaluate((id) => window.peer.close(id), `feed-${feed}`);
    if (E2EE) await page.evaluate((feed) => window.e2ee.leave(feed), String(feed));
    if (handle !== null) {
      await janus.post(`/${janus.id}/${handle}`, { janus: "detach", transaction: randomUUID() }).catch(() => {});
    }
    report("unsubscribed", { feed });
  };

  const follow = (publishers) => {
    for (const publisher of publishers ?? []) {
      subscribe(publisher.id, publisher.display ?? null).catch((error) => report("console", { text: `subscribe ${publisher.id}: ${error}` }));
    }
  };

  const publisher = await janus.attach();
  janus.handlers.set(publisher, (event) => {
    if (event.janus === "webrtcup") report("webrtcup", { feed: self.id });
    const data = event.plugindata?.data;
    if (!data) return;
    follow(data.publishers);
    for (const gone of [data.unpublished, data.leaving]) {
      if (gone !== undefined && gone !== "ok") unsubscribe(gone).catch(() => {});
    }
  });
  const { data: joined } = await janus.message(publisher, {
    request: "join",
    ptype: "publisher",
    room,
    pin: args.pin,
    display: args.name,
  });
  self.id = joined.id;
  report("joined", { id: joined.id, room, publishers: (joined.publishers ?? []).map((p) => p.id) });
  if (E2EE) {
    // A fresh worker and agreement for each stay: nothing of a stay before is kept.
    await page.evaluate(
      async ([worker, meeting, me, wrongKey]) => {
        window.e2ee?.stop();
        window.e2eeWorker?.terminate();
        window.e2eeWorker = new Worker(URL.createObjectURL(new Blob([worker], { type: "text/javascript" })));
        if (wrongKey) {
          const post = window.e2eeWorker.postMessage.bind(window.e2eeWorker);
          window.e2eeWorker.postMessage = (m) =>
            post(m.type === "sender-key" ? { ...m, secret: crypto.getRandomValues(new Uint8Array(32)) } : m);
        }
        window.e2ee = new window.roomdE2ee.MeetingE2ee(window.e2eeWorker, meeting);
        await window.e2ee.start(me);
      },
      [E2EE.worker, `janus-videoroom:${room}`, String(joined.id), args["e2ee-wrong-key"]],
    );
  }

  const offer = await page.evaluate((e2ee) => window.peer.offer("publisher", { send: true, receive: false, e2ee }), E2EE !== null);
  const { jsep } = await janus.message(
    publisher,
    { request: "publish", audio: true, video: true },
    { type: "offer", sdp: offer },
  );
  if (!jsep) throw new Error("publish: Janus sent no answer");
  await page.evaluate(([sdp]) => window.peer.accept("publisher", sdp), [jsep.sdp]);
  report("published", { id: joined.id });
  follow(joined.publishers);
  stay = {
    leave: async () => {
      await janus.post(`/${janus.id}/${publisher}`, {
        janus: "message",
        transaction: randomUUID(),
        body: { request: "leave" },
      });
      for (const feed of [...subscriptions.keys()]) await page.evaluate((id) => window.peer.close(id), `feed-${feed}`);
      await page.evaluate(() => window.peer.close("publisher"));
    },
  };

  const reason = await janus.closed;
  for (const feed of [...subscriptions.keys()]) {
    subscriptions.delete(feed);
    await page.evaluate((id) => window.peer.close(id), `feed-${feed}`);
  }
  await page.evaluate(() => window.peer.close("publisher"));
  return reason;
}

report("pid", { pid: process.pid });
// Chromium's fake camera runs at 20 fps unless told otherwise; the same switch again with a
// value (the last one counts) sets the benchmark's frame rate.
const extraArgs = camera ? [`--use-fake-device-for-media-stream=fps=${camera.frameRate}`] : [];
const { page, close } = await launch({ extraArgs });
closeOnExit(close);
if (camera) {
  // The benchmark's size replaces lib/peer-page.js's video constraints. The size and rate the
  // camera opened at are reported (event `camera`), so the benchmark sees what was measured.
  await page.evaluate((wanted) => {
    const open = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
    navigator.mediaDevices.getUserMedia = (constraints) =>
      open({
        ...constraints,
        video: constraints.video
          ? { width: { ideal: wanted.width }, height: { ideal: wanted.height }, frameRate: { ideal: wanted.frameRate } }
          : false,
      });
  }, camera);
  const opened = await page.evaluate(async () => {
    const media = await navigator.mediaDevices.getUserMedia({ video: true });
    const settings = media.getVideoTracks()[0].getSettings();
    for (const track of media.getTracks()) track.stop();
    return { width: settings.width, height: settings.height, fps: settings.frameRate };
  });
  report("camera", opened);
}
if (args.timecode) {
  await page.evaluate(TIMECODE_READER);
  setInterval(async () => {
    try {
      const { samples, unreadable } = await page.evaluate(() => window.timecode.take());
      if (samples.length > 0 || unreadable > 0) report("latency", { samples, unreadable });
    } catch (error) {
      report("console", { text: `timecode: ${error}` });
    }
  }, LATENCY_REPORT_MS);
}
reportStats(page, Number(args["stats-ms"]));
createInterface({ input: process.stdin }).on("line", async (line) => {
  try {
    const command = JSON.parse(line);
    if (E2EE && typeof command.confirm_sas === "string") {
      await page.evaluate((participant) => window.e2ee.confirmSas(participant), command.confirm_sas);
      report("sas_confirmed", { participant: command.confirm_sas });
    } else if (command.leave === true) {
      gone = true;
      await stay?.leave();
      report("left");
    } else {
      throw new Error("unknown command");
    }
  } catch (error) {
    report("console", { text: `command ${line}: ${error}` });
  }
});
if (E2EE) {
  await page.addScriptTag({ content: E2EE.meeting });
  setInterval(async () => {
    try {
      const status = await page.evaluate(() => window.e2ee?.status() ?? null);
      if (status) report("e2ee", status);
    } catch (error) {
      report("console", { text: `e2ee status: ${error}` });
    }
  }, Number(args["stats-ms"]));
}
while (!gone) {
  try {
    const reason = await participate(page);
    report("disconnected", { reason: String(reason) });
  } catch (error) {
    report("disconnected", { reason: String(error) });
  }
  await sleep(REJOIN_DELAY_MS);
}
