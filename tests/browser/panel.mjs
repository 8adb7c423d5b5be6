// The shipped touch panel (roomd's own /panel page) in Chromium, as it stands on a meeting-room
// table: it reads what the panel shows of the meeting's participants and reports it as JSON
// lines on stdout (see tests/src/browser.rs), and taps buttons on request.
//
//   node panel.mjs --url https://<room>:8443 --token <bearer token> [--locale en-GB]
//
// The panel is signed in the way a paired panel is: its token in localStorage. The room's
// certificate is its enrolled one (a CA made by the test), so certificate errors are ignored in
// this one browser context, as the web UI's own browser test does.
//
// Lines: {"event":"panel","meeting_state","encrypted","on_hold","far_end_on_hold","content_floor","keypad","incoming" (the caller
// a ringing call shows),"participants":[{"id",
// "e2ee","frames","identity","verified_by","sas","waiting","confirm","hand","moderator","presenter"}],"locked","meeting_e2ee",
// "chat":[{"from","text"}]} whenever what the
// panel shows changes; {"event":"tapped","testid","participant"}; {"event":"filled","selector"};
// {"event":"error",…}.
//
// Commands, one JSON object a line on stdin: {"tap":"<data-testid>"} taps that button,
// {"tap":"confirm-sas","participant":"j-…"} that participant's; {"fill":"#join-address",
// "value":"…"} types into a field. Each is answered with its line or an error line.

import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

import { chromium } from "playwright-core";

import { closeOnExit, fail, report, sleep } from "./lib/driver.mjs";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    token: { type: "string" },
    locale: { type: "string", default: "en-GB" },
  },
});
if (!args.url || !args.token) fail("usage: --url https://<room>:<port> --token <bearer token>");

// Commands are read from the start (stdin flows once the driver listens to it) and carried out,
// in order, once the panel has loaded.
let loaded;
const ready = new Promise((resolve) => (loaded = resolve));
let queue = Promise.resolve();
const commands = createInterface({ input: process.stdin });
commands.on("line", (line) => {
  queue = queue.then(() => ready).then(() => carryOut(line));
});
commands.on("close", () => process.exit(0));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
closeOnExit(() => browser.close().catch(() => {}));
const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: args.locale, viewport: { width: 1280, height: 800 } });
await context.addInitScript((token) => localStorage.setItem("roomd.panel.token", token), args.token);
const page = await context.newPage();
page.on("console", (message) => {
  if (message.type() === "error") report("console", { text: message.text() });
});
// Other tests on the machine add and remove network interfaces (their namespaces' veths);
// Chromium aborts a navigation under way when they change (ERR_NETWORK_CHANGED): load again.
for (let attempt = 1; ; attempt++) {
  try {
    await page.goto(`${args.url}/panel`);
    break;
  } catch (e) {
    if (attempt >= 5 || !/ERR_NETWORK_CHANGED/.test(e.message)) throw e;
    await sleep(200);
  }
}
loaded();

// What the panel shows, read from the page (never from the API).
function shown() {
  const rows = [...document.querySelectorAll('[data-testid="participants"] li[data-participant]')];
  return {
    meeting_state: document.querySelector(".meeting-state")?.getAttribute("data-state") ?? "",
    encrypted: document.querySelector('[data-testid="meeting-encryption"]')?.getAttribute("data-encrypted") ?? "",
    on_hold: document.querySelector('[data-testid="on-hold"]') !== null,
    far_end_on_hold: document.querySelector('[data-testid="far-end-on-hold"]') !== null,
    content_floor: document.querySelector('[data-testid="content-floor"]')?.getAttribute("data-floor") ?? "",
    keypad: document.querySelector('[data-testid="keypad"]') !== null,
    incoming: document.querySelector('[data-testid="incoming-caller"]')?.textContent ?? "",
    meeting_e2ee: document.querySelector('[data-testid="meeting-e2ee"]')?.getAttribute("data-e2ee") ?? "",
    participants: rows.map((row) => ({
      id: row.getAttribute("data-participant"),
      e2ee: row.querySelector('[data-testid="participant-e2ee"]')?.getAttribute("data-e2ee") ?? "",
      frames: row.querySelector('[data-testid="participant-frames"]')?.getAttribute("data-frames") ?? "",
      identity: row.querySelector('[data-testid="participant-identity"]')?.textContent ?? "",
      verified_by: row.querySelector('[data-testid="participant-identity"]')?.getAttribute("data-verified-by") ?? "",
      sas: row.querySelector('[data-testid="participant-sas"]')?.textContent ?? "",
      waiting: row.querySelector('[data-testid="sas-waiting"]') !== null,
      confirm: row.querySelector('[data-testid="confirm-sas"]') !== null,
      hand: row.querySelector('[data-testid="hand-raised"]') !== null,
      moderator: row.querySelector('[data-testid="guest-roles"]')?.getAttribute("data-moderator") === "true",
      presenter: row.querySelector('[data-testid="guest-roles"]')?.getAttribute("data-presenter") === "true",
    })),
    locked: document.querySelector('[data-testid="meeting-locked"]') !== null,
    chat: [...document.querySelectorAll('[data-testid="panel-chat-messages"] li')].map((li) => ({ from: li.getAttribute("data-from"), text: li.textContent })),
  };
}

async function carryOut(line) {
  let command;
  try {
    command = JSON.parse(line);
  } catch {
    report("error", { message: `not a JSON command: ${line}` });
    return;
  }
  if (command.fill) {
    try {
      await page.fill(command.fill, command.value ?? "", { timeout: 10000 });
      report("filled", { selector: command.fill });
    } catch (e) {
      report("error", { message: `cannot fill ${command.fill}: ${e.message}` });
    }
  }
  if (command.tap) {
    const selector = command.participant
      ? `[data-testid="${command.tap}"][data-participant="${command.participant}"]`
      : `[data-testid="${command.tap}"]`;
    try {
      await page.click(selector, { timeout: 10000 });
      report("tapped", { testid: command.tap, participant: command.participant });
    } catch (e) {
      report("error", { message: `cannot tap ${selector}: ${e.message}` });
    }
  }
}

let last = "";
for (;;) {
  const now = JSON.stringify(await page.evaluate(shown).catch((e) => ({ error: e.message })));
  if (now !== last) {
    last = now;
    report("panel", JSON.parse(now));
  }
  await sleep(250);
}
