// A Chromium guest of a meeting hosted by roomd, following docs/meetings.md ("Hosted meetings:
// the guest API"): asks to join with name and PIN, waits in the lobby until admitted, sends its
// fake camera and microphone by WHIP and plays the room by WHEP, and reports JSON lines on stdout
// (see tests/src/browser.rs). roomd's self-signed certificate is verified: --ca is that
// certificate (roomd's <state>/tls/cert.pem), so nothing ignores certificate errors.
//
//   node direct-guest.mjs --url https://10.77.1.2:8443/join/<meeting-id> [--pin 1234]
//        [--name Guest] [--ca cert.pem] [--stats-ms 1000]
//
// Lines: {"event":"requested","guest_id":…,"state":"lobby"}, {"event":"refused","status":403},
// {"event":"state","state":"lobby|admitted|removed|ended"}, {"event":"published"} (WHIP
// answered), {"event":"playing"} (WHEP answered), {"event":"stats","peers":[…]} (peers "whip"
// and "whep"), {"event":"left"}, {"event":"error",…}.
//
// Commands, one JSON object a line on stdin: {"send":"audio"|"video","on":false} stops sending
// that track on the WHIP connection (as a participant who mutes it), "on":true resumes it; each
// is answered with {"event":"sending","kind":…,"on":…}; {"publish":["video"]} publishes again by
// WHIP with only those tracks (the earlier WHIP session is replaced, so the other media line is
// gone), answered with {"event":"published",…}.

import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

import { closeOnExit, fail, launch, report, reportStats, request, sleep } from "./lib/driver.mjs";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    pin: { type: "string" },
    name: { type: "string", default: "Guest" },
    ca: { type: "string" },
    "stats-ms": { type: "string", default: "1000" },
  },
});
if (!args.url) fail("usage: --url https://<room>/join/<meeting-id> [--pin P] [--name N] [--ca PEM]");
const joinUrl = new URL(args.url);
const match = joinUrl.pathname.match(/\/join\/([^/]+)\/?$/);
if (!match) fail(`--url must end in /join/<meeting-id>: ${args.url}`);
const guests = `${joinUrl.origin}/api/v1/join/${encodeURIComponent(match[1])}/guests`;
const POLL_MS = 500;

async function api(method, url, { token, json, sdp } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  let body;
  if (json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(json);
  } else if (sdp !== undefined) {
    headers["content-type"] = "application/sdp";
    body = sdp;
  }
  return request(url, { method, headers, body, ca: args.ca, timeoutMs: 15000 });
}

// One WHIP or WHEP exchange: our offer, roomd's answer (201 with the SDP).
async function negotiate(page, kind, token, self, kinds) {
  const direction = kind === "whip" ? { send: true, receive: false, kinds } : { send: false, receive: true };
  const offer = await page.evaluate(([id, d]) => window.peer.offer(id, d), [kind, direction]);
  const answer = await api("POST", `${self}/${kind}`, { token, sdp: offer });
  if (answer.status !== 201) throw new Error(`${kind.toUpperCase()}: HTTP ${answer.status}: ${answer.body}`);
  await page.evaluate(([id, sdp]) => window.peer.accept(id, sdp), [kind, answer.body]);
  return answer.headers.location ?? "";
}

const requested = await api("POST", guests, { json: { name: args.name, pin: args.pin } }).catch((error) =>
  fail(`asking to join: ${error}`),
);
if (requested.status !== 201) {
  report("refused", { status: requested.status, body: requested.body });
  process.exit(1);
}
const guest = JSON.parse(requested.body);
report("requested", { guest_id: guest.guest_id, state: guest.state });
const self = `${guests}/${encodeURIComponent(guest.guest_id)}`;

const { page, close } = await launch();
closeOnExit(async () => {
  await api("DELETE", self, { token: guest.token }).catch(() => {});
  report("left");
  await close();
});
reportStats(page, Number(args["stats-ms"]));
createInterface({ input: process.stdin }).on("line", async (line) => {
  try {
    const command = JSON.parse(line);
    if (Array.isArray(command.publish)) {
      const whip = await negotiate(page, "whip", guest.token, self, command.publish);
      report("published", { location: whip, kinds: command.publish });
      return;
    }
    if (typeof command.send !== "string") throw new Error(`unknown command ${line}`);
    await page.evaluate(([kind, on]) => window.peer.send("whip", kind, on), [command.send, command.on === true]);
    report("sending", { kind: command.send, on: command.on === true });
  } catch (error) {
    report("console", { text: `command ${line}: ${error}` });
  }
});

let state = guest.state;
let media = false;
for (;;) {
  const answer = await api("GET", self, { token: guest.token }).catch((error) => ({ status: 0, body: `${error}` }));
  if (answer.status === 200) {
    const now = JSON.parse(answer.body).state;
    if (now !== state) {
      state = now;
      report("state", { state });
    }
  } else {
    report("console", { text: `guest state: HTTP ${answer.status}: ${answer.body}` });
  }
  if (state === "admitted" && !media) {
    media = true;
    try {
      const whip = await negotiate(page, "whip", guest.token, self);
      report("published", { location: whip });
      const whep = await negotiate(page, "whep", guest.token, self);
      report("playing", { location: whep });
    } catch (error) {
      fail(error);
    }
  }
  if ((state === "removed" || state === "ended") && media) {
    media = false;
    await page.evaluate(() => {
      window.peer.close("whip");
      window.peer.close("whep");
    });
  }
  await sleep(POLL_MS);
}
