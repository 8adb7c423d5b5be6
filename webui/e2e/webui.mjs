// End-to-end test of the web UI against a running roomd (started by tests/tests/webui.rs):
// Debian's Chromium, driven by playwright-core, claims the room, logs in, checks a config form
// shows the server's message, pairs a touch panel, mutes (and sees the room display change),
// joins and leaves a hosted meeting as a guest (a second guest on a phone, admitted by the first
// as moderator), runs axe-core on every page, measures the guest page's layout on a phone, and the
// panel's time to interactive. Screenshots go to $ARTIFACTS.
//
// Environment: ROOMD_URL (https://127.0.0.1:PORT), STATE_DIR (roomd's state directory),
// ARTIFACTS (a directory for screenshots). Exit status 0 only if every check passed; a check
// that cannot run yet (meetings not in this roomd) prints SKIPPED with the reason.
import { chromium } from "playwright-core";
import { readFileSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const base = process.env.ROOMD_URL;
const stateDir = process.env.STATE_DIR;
const artifacts = process.env.ARTIFACTS;
if (!base || !stateDir || !artifacts) {
  console.error("set ROOMD_URL, STATE_DIR and ARTIFACTS");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const USERNAME = "owner";
const PASSWORD = "a long enough admin password";

const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, fn, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** Fails on CSP violations and page errors: the pages must run under their strict policy. */
function watch(page, name) {
  page.on("console", (m) => {
    if (/Content Security Policy|Refused to/.test(m.text())) failures.push(`${name}: CSP violation: ${m.text()}`);
  });
  page.on("pageerror", (e) => failures.push(`${name}: page error: ${e.message}`));
}

async function axe(page, name) {
  // Evaluated over the DevTools protocol, so the page's CSP (no inline scripts) does not apply.
  await page.evaluate(AXE_SOURCE + ";0");
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of bad) console.log(`  axe ${name}: ${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join("; ")})`);
  check(bad.length === 0, `axe: no serious or critical violations on ${name} (${result.violations.length} minor)`);
}

async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

/** Fraction of pixels that differ between two PNG snapshots inside a region (fractions of the frame). */
async function snapshotDiff(page, a, b, region) {
  return page.evaluate(
    async ([a, b, region]) => {
      const pixels = async (b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }));
        const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
        const ctx = canvas.getContext("2d");
        ctx.drawImage(bitmap, 0, 0);
        const [x, y, w, h] = [region.x * bitmap.width, region.y * bitmap.height, region.w * bitmap.width, region.h * bitmap.height].map(Math.round);
        return ctx.getImageData(x, y, w, h).data;
      };
      const [pa, pb] = [await pixels(a), await pixels(b)];
      let differing = 0;
      for (let i = 0; i < pa.length; i += 4) {
        if (Math.abs(pa[i] - pb[i]) + Math.abs(pa[i + 1] - pb[i + 1]) + Math.abs(pa[i + 2] - pb[i + 2]) > 60) differing++;
      }
      return differing / (pa.length / 4);
    },
    [a, b, region],
  );
}

/** The room display now, as base64 PNG, fetched with the page's own credentials. */
async function snapshot(page, token) {
  return page.evaluate(async (token) => {
    const response = await fetch("/api/v1/display/snapshot", { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    if (!response.ok) throw new Error(`snapshot: ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    let s = "";
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s);
  }, token);
}

// The indicator line (room name, MIC MUTED, CAMERA OFF, call state) at the top left.
const INDICATORS = { x: 0, y: 0, w: 0.5, h: 0.15 };
const CENTRE = { x: 0.2, y: 0.35, w: 0.6, h: 0.3 };

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
  ],
});
try {
  // ---- admin: claim, log in ----
  const adminContext = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 }, locale: "en-GB" });
  const admin = await adminContext.newPage();
  watch(admin, "admin");
  await admin.goto(`${base}/`);
  check(admin.url().endsWith("/panel") || admin.url().endsWith("/admin"), `/ redirects to a page (${admin.url()})`);
  await admin.goto(`${base}/admin`);
  await admin.fill("#username", USERNAME);
  await admin.fill("#password", PASSWORD);
  await admin.click('[data-testid="submit"]');
  // An unclaimed room answers the login with 409: the page switches to the claim form.
  await admin.waitForSelector('[data-testid="claim-form"]');
  await axe(admin, "admin claim form");
  await shot(admin, "01-admin-claim");
  // A wrong code is refused with the server's message.
  await admin.fill("#claim-code", "WRONGCODE123");
  await admin.click('[data-testid="submit"]');
  const wrong = await admin.waitForSelector(".error-banner");
  check(/claim code is wrong/.test(await wrong.textContent()), "a wrong claim code shows the server's message");
  const claimCode = readFileSync(join(stateDir, "claim-code"), "utf8").trim();
  await admin.fill("#claim-code", claimCode);
  await admin.click('[data-testid="submit"]');
  await admin.waitForSelector('[data-testid="logout"]');
  check(true, "claimed the room and logged in as the first admin");
  await admin.waitForSelector('[data-testid="display-preview"]');
  await until("hardware table", () => admin.$("table"));
  await axe(admin, "admin overview");
  await shot(admin, "02-admin-overview");

  // ---- admin: a config form shows the server's validation message next to the field ----
  await admin.click('[data-tab="config"]');
  await admin.waitForSelector('[data-key="audio.default_volume"]');
  await admin.fill('[data-key="audio.default_volume"]', "150");
  await admin.click('[data-testid="save-audio"]');
  const fieldError = await admin.waitForSelector('[data-field-error="cfg-audio-default_volume"]');
  const message = await fieldError.textContent();
  check(/150 is out of range 0..=100/.test(message), `the volume field shows the server's message: ${message}`);
  const described = await admin.getAttribute('[data-key="audio.default_volume"]', "aria-describedby");
  check((described ?? "").includes("cfg-audio-default_volume-error"), "the message is tied to its field (aria-describedby)");
  await axe(admin, "admin configuration");
  await shot(admin, "03-admin-config-error");
  await admin.fill('[data-key="audio.default_volume"]', "40");
  await admin.click('[data-testid="save-audio"]');
  await admin.waitForSelector("text=Saved");
  check(true, "a valid value is saved");

  // ---- admin: a weak password is refused with the server's message at the password field ----
  await admin.click('[data-tab="users"]');
  await admin.fill("#new-username", "integrator1");
  await admin.fill("#new-password", "short");
  await admin.click('form.inline-form button[type="submit"].primary');
  const weak = await admin.waitForSelector('[data-field-error="new-password"]');
  check(/password/.test(await weak.textContent()), `a weak password shows the server's message: ${await weak.textContent()}`);
  await axe(admin, "admin users");
  await shot(admin, "03b-admin-users-error");

  // ---- panel: pairing ----
  const panelContext = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 }, locale: "de-DE" });
  const panel = await panelContext.newPage();
  watch(panel, "panel");
  await panel.goto(`${base}/panel`);
  await panel.waitForSelector('[data-testid="pair-request"]');
  check((await panel.textContent("h1")) === "Touch-Panel koppeln", "the panel speaks German to a German browser");
  await axe(panel, "panel pairing");
  await shot(panel, "04-panel-pairing");
  const beforeRequest = await snapshot(admin);
  await panel.click('[data-testid="pair-request"]');
  await panel.waitForSelector("#pair-code");
  const codeFile = join(stateDir, "pairing-code");
  await until("the pairing code file", () => existsSync(codeFile));
  const pairingCode = readFileSync(codeFile, "utf8").trim();
  await sleep(500);
  const withCode = await snapshot(admin);
  writeFileSync(join(artifacts, "display-pairing-code.png"), Buffer.from(withCode, "base64"));
  const centreChange = await snapshotDiff(admin, beforeRequest, withCode, CENTRE);
  // The code is drawn on the screen only: the snapshot, which the user role may read, must not show it.
  check(centreChange <= 0.002, `the display snapshot does not show the pairing code (${(centreChange * 100).toFixed(2)} % of its centre changed)`);
  await shot(panel, "05-panel-code-entry");
  await panel.fill("#pair-code", pairingCode === "00000000" ? "11111111" : "00000000");
  await panel.click('[data-testid="pair-submit"]');
  const wrongCode = await panel.waitForSelector(".error-banner");
  check(/4 attempts left/.test(await wrongCode.textContent()), "a wrong pairing code shows the server's message");
  await panel.fill("#pair-code", pairingCode);
  await panel.click('[data-testid="pair-submit"]');
  await panel.waitForSelector('[data-testid="mute"]');
  const token = await panel.evaluate(() => localStorage.getItem("roomd.panel.token"));
  const session = await panel.evaluate(async (token) => (await fetch("/api/v1/session", { headers: { Authorization: `Bearer ${token}` } })).json(), token);
  check(session.role === "room-control", `the paired panel holds a room-control token (${session.role})`);
  const config = await panel.evaluate(async (token) => (await fetch("/api/v1/config", { headers: { Authorization: `Bearer ${token}` } })).status, token);
  check(config === 403, "the panel's token cannot read the configuration");
  await panel.waitForSelector('.live.on');
  await axe(panel, "touch panel");
  await shot(panel, "06-panel-1280x800");
  await panel.setViewportSize({ width: 1920, height: 1080 });
  await shot(panel, "07-panel-1920x1080");
  const small = await panel.evaluate(() =>
    [...document.querySelectorAll("main button, main a, main input, main select")]
      .filter((e) => e.offsetParent !== null)
      .map((e) => e.getBoundingClientRect())
      .filter((r) => r.height < 48 || r.width < 48).length,
  );
  check(small === 0, `every touch target on the panel is at least 48 px (${small} smaller)`);
  await panel.setViewportSize({ width: 1280, height: 800 });

  // ---- the audit log names the pairing ----
  await admin.click('[data-tab="logs"]');
  await admin.waitForSelector('[data-testid="audit"] tbody tr');
  const auditText = await admin.textContent('[data-testid="audit"]');
  check(/paired panel .*room-control/.test(auditText), "the audit log records the pairing and its token");
  // The daemon's log: info and up by default (roomd's start says where it listens), fewer at "error".
  await admin.waitForSelector('[data-testid="daemon-log"] tbody tr');
  const logRows = '[data-testid="daemon-log"] tbody tr';
  const infoRows = await admin.locator(logRows).count();
  const logText = await admin.textContent('[data-testid="daemon-log"]');
  check(infoRows >= 1 && /listening on https:/.test(logText), `the daemon log shows roomd's recent records (${infoRows})`);
  await axe(admin, "admin logs");
  await admin.selectOption("#log-level", "error");
  await admin.waitForFunction(
    ([selector, before]) => document.querySelectorAll(selector).length < before,
    [logRows, infoRows],
  );
  const levels = await admin.$$eval(logRows, (rows) => rows.map((r) => r.dataset.level));
  check(levels.every((l) => l === "error"), `the level filter leaves only errors (${levels.length} rows)`);
  await admin.selectOption("#log-level", "info");
  await admin.click('[data-testid="daemon-log-refresh"]');
  await admin.waitForSelector(logRows);

  // ---- mute from the panel: privacy state and the room display change ----
  // The camera's moving picture (a ball crossing the screen) fills the display behind the
  // indicators; with the camera off (black at the source) the strip changes only when the
  // indicators do.
  await panel.click('[data-testid="camera"]');
  await panel.waitForSelector('[data-testid="camera-state"].warn');
  await sleep(600);
  const unmutedA = await snapshot(admin);
  await sleep(400);
  const unmutedB = await snapshot(admin);
  const noise = await snapshotDiff(admin, unmutedA, unmutedB, INDICATORS);
  await panel.click('[data-testid="mute"]');
  await panel.waitForSelector('[data-testid="mic-state"].warn');
  check(true, "the panel's privacy bar shows the microphone muted");
  await sleep(600);
  const muted = await snapshot(admin);
  writeFileSync(join(artifacts, "display-unmuted.png"), Buffer.from(unmutedB, "base64"));
  writeFileSync(join(artifacts, "display-muted.png"), Buffer.from(muted, "base64"));
  const change = await snapshotDiff(admin, unmutedB, muted, INDICATORS);
  check(change > noise + 0.005, `muting changes the display's indicator strip (${(change * 100).toFixed(2)} % vs ${(noise * 100).toFixed(2)} % noise)`);
  await admin.waitForSelector('[data-testid="mic-state"].warn');
  check(true, "the admin pages show the mute live");
  await shot(panel, "08-panel-muted");
  await panel.click('[data-testid="mute"]');
  await panel.waitForSelector('[data-testid="mic-state"].ok');
  await panel.click('[data-testid="camera"]');
  await panel.waitForSelector('[data-testid="camera-state"].ok');

  // ---- camera off shows in the privacy bar; standby and wake from the panel ----
  await panel.click('[data-testid="camera"]');
  await panel.waitForSelector('[data-testid="camera-state"].warn');
  check(true, "camera off shows in the panel's privacy bar");
  await panel.click('[data-testid="camera"]');
  await panel.waitForSelector('[data-testid="camera-state"].ok');
  await panel.click('[data-testid="standby"]');
  await panel.waitForSelector('[data-testid="wake"]');
  await axe(panel, "panel standby");
  await shot(panel, "09-panel-standby");
  await panel.click('[data-testid="wake"]');
  await panel.waitForSelector('[data-testid="mute"]');
  check(true, "standby and wake from the panel");

  // ---- the guest page: preview, form, accessible, and a refusal shown to the guest ----
  const guestContext = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 }, locale: "en-US", permissions: ["camera", "microphone"] });
  const guest = await guestContext.newPage();
  watch(guest, "guest");
  await guest.goto(`${base}/join/no-such-meeting`);
  await guest.waitForSelector('[data-testid="guest-join"]');
  await guest.waitForSelector("figure.self video");
  check(true, "the guest page shows the camera preview (fake device)");
  await axe(guest, "guest join page");
  await shot(guest, "10-guest-join");
  await guest.fill("#guest-name", "Mallory");
  await guest.click('[data-testid="guest-join"]');
  const refusal = await guest.waitForSelector(".error-banner");
  check((await refusal.textContent()).length > 0, `joining an unknown meeting shows the server's answer: ${await refusal.textContent()}`);

  // ---- a hosted meeting, joined by a guest (needs the meetings of docs/meetings.md) ----
  const hasMeeting = await panel.evaluate(async (token) => {
    const r = await fetch("/api/v1/status/meeting", { headers: { Authorization: `Bearer ${token}` } });
    return r.ok;
  }, token);
  if (!hasMeeting) {
    console.log("SKIPPED meeting: this roomd has no status.meeting (meetings, issue 4, are not merged); host/guest/mute-in-meeting/leave not run");
    const unavailable = await panel.$('[data-testid="meetings-unavailable"]');
    check(unavailable !== null, "the panel says meetings are not available");
  } else {
    await panel.fill("#host-pin", "4321");
    await panel.click('[data-testid="host"]');
    const joinUrl = await (await panel.waitForSelector('[data-testid="join-url"]', { timeout: 20000 })).textContent();
    check(/\/join\//.test(joinUrl), `the panel shows the guest link ${joinUrl}`);
    const meetingId = joinUrl.split("/join/")[1];
    // Nobody has joined: no stream exists, so nothing is shown as encrypted.
    const encryptionBadge = () => panel.getAttribute('[data-testid="meeting-encryption"]', "data-encrypted");
    await sleep(1500);
    check((await encryptionBadge()) === "false", "the panel shows an empty meeting as not encrypted");
    await guest.goto(`${base}/join/${meetingId}`);
    await guest.waitForSelector('[data-testid="guest-join"]');
    await guest.fill("#guest-name", "Alice");
    await guest.fill("#guest-pin", "4321");
    await guest.click('[data-testid="guest-join"]');
    await guest.waitForSelector('[data-testid="guest-lobby"]');
    await panel.click('[data-testid="admit"]', { timeout: 15000 });
    await guest.waitForSelector('[data-testid="guest-joined"]', { timeout: 20000 });
    await until("Alice connected", () => panel.evaluate(() => /Alice/.test(document.querySelector('[data-testid="participants"]')?.textContent ?? "")), 20000);
    check(true, "the guest was admitted from the panel and is in the meeting");
    await until("the meeting measured encrypted", async () => (await encryptionBadge()) === "true", 20000);
    await until("Alice's streams encrypted", () => panel.evaluate(() => document.querySelector('[data-testid="participant-encryption"]')?.classList.contains("ok")), 20000);
    const row = await panel.evaluate(() => document.querySelector('[data-testid="participants"]')?.textContent ?? "");
    check(!/Verified|Verifiziert/.test(row), `no verified badge until roomd verifies participants: ${row}`);
    await shot(panel, "11-panel-in-meeting");
    await shot(guest, "12-guest-in-meeting");

    // ---- a second guest on a phone, admitted by Alice as moderator; Alice presents ----
    await panel.click('[data-testid="moderator"]');
    await guest.waitForSelector('[data-testid="moderation"]', { timeout: 15000 });
    check(true, "the panel made Alice a moderator and her page shows the moderation card");
    const phoneContext = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: "de-DE", permissions: ["camera", "microphone"] });
    const phone = await phoneContext.newPage();
    watch(phone, "guest on a phone");
    await phone.goto(`${base}/join/${meetingId}`);
    await phone.waitForSelector('[data-testid="guest-join"]');
    await phone.fill("#guest-name", "Bob");
    await phone.fill("#guest-pin", "4321");
    await phone.click('[data-testid="guest-join"]');
    await phone.waitForSelector('[data-testid="guest-lobby"]');
    await guest.click('[data-testid="moderation-admit"]', { timeout: 15000 });
    await phone.waitForSelector('[data-testid="guest-joined"]', { timeout: 20000 });
    check(true, "Alice admitted Bob from her page");
    await panel.click('[data-testid="presenter"]');
    await guest.waitForSelector('[data-testid="guest-share"]', { timeout: 15000 });
    await guest.waitForSelector('[data-testid="other-guest"][data-name="Bob"]', { timeout: 20000 });
    await phone.waitForSelector('[data-testid="other-guest"][data-name="Alice"]', { timeout: 20000 });
    await axe(guest, "guest page in a meeting (another guest, moderator, presenter, documents, chat)");
    await axe(phone, "guest page in a meeting on a phone (German)");
    await shot(guest, "13-guest-moderating");
    await shot(phone, "14-guest-on-a-phone");
    // Measured on the phone: nothing wider than the screen, and every control of the meeting
    // reachable and at least 40 px high (a finger's width).
    const layout = await phone.evaluate(() => {
      const controls = [...document.querySelectorAll("main button, main input, main select")].filter((e) => e.offsetParent !== null);
      const boxes = controls.map((e) => e.getBoundingClientRect());
      // What sticks out, to say so when it does.
      const wide = [...document.querySelectorAll("body *")]
        .filter((e) => e.getBoundingClientRect().right > screen.width + 0.5)
        .slice(0, 5)
        .map((e) => `${e.tagName.toLowerCase()}${e.className ? "." + String(e.className).split(" ").join(".") : ""}${e.dataset.testid ? `[${e.dataset.testid}]` : ""} ${e.getBoundingClientRect().right.toFixed(0)} px`);
      return {
        wide,
        width: screen.width,
        scrollWidth: document.documentElement.scrollWidth,
        controls: controls.length,
        outside: boxes.filter((b) => b.left < 0 || b.right > screen.width + 0.5).length,
        lowest: Math.min(...boxes.map((b) => b.height)),
      };
    });
    console.log(`BENCH guest page on a phone (390x844): page ${layout.scrollWidth} px wide, ${layout.controls} controls, ${layout.outside} outside the screen, lowest ${layout.lowest.toFixed(0)} px`);
    check(layout.scrollWidth <= layout.width, `the guest page on a phone scrolls only vertically (${layout.scrollWidth} px in ${layout.width}; wider: ${layout.wide.join(", ") || "none"})`);
    check(layout.outside === 0, `every control of the meeting is on the phone's screen (${layout.outside} outside)`);
    check(layout.lowest >= 40, `every control on the phone is at least 40 px high (lowest ${layout.lowest.toFixed(0)} px)`);
    await phone.click('[data-testid="guest-leave"]');
    await phoneContext.close();
    const before = await snapshot(admin);
    await panel.click('[data-testid="mute"]');
    await panel.waitForSelector('[data-testid="mic-state"].warn');
    await sleep(600);
    const after = await snapshot(admin);
    check((await snapshotDiff(admin, before, after, INDICATORS)) > 0.005, "muting in the meeting changes the display");
    await panel.click('[data-testid="mute"]');
    await guest.click('[data-testid="guest-leave"]');
    await panel.click('[data-testid="leave"]');
    await until("meeting idle", () => panel.evaluate(async (token) => (await (await fetch("/api/v1/status/meeting/state", { headers: { Authorization: `Bearer ${token}` } })).json()) === "idle", token), 15000);
    check(true, "left the meeting");
  }

  // ---- languages: switchable and remembered ----
  await panel.click('button[lang="en"]');
  await panel.reload();
  await panel.waitForSelector('[data-testid="mute"]');
  check((await panel.textContent('[data-testid="mute"]')).trim() === "Mute", "the chosen language is remembered");

  // ---- time to interactive of the panel on loopback ----
  const times = [];
  for (let i = 0; i < 5; i++) {
    await panel.goto(`${base}/panel`);
    await panel.waitForSelector('.live.on [data-testid], .live.on, [data-testid="mute"]');
    await panel.waitForSelector(".live.on");
    times.push(await panel.evaluate(() => performance.now()));
  }
  times.sort((a, b) => a - b);
  console.log(`BENCH panel time to interactive (live state shown, loopback): median ${times[2].toFixed(0)} ms (min ${times[0].toFixed(0)}, max ${times[4].toFixed(0)})`);

  // ---- revoking the panel's token (admin, API tokens) sends the panel back to pairing ----
  await admin.click('[data-tab="tokens"]');
  const revoke = await admin.waitForSelector('[data-testid="tokens"] button[aria-label*="panel"]');
  await revoke.click();
  await until("the token list without the panel", async () => !/panel Touch/.test(await admin.textContent('[data-testid="tokens"]')));
  await panel.click('[data-testid="camera"]');
  await panel.waitForSelector('[data-testid="pair-request"]', { timeout: 15000 });
  check(true, "a panel whose token was revoked asks for pairing again");
} catch (e) {
  failures.push(`exception: ${e.stack ?? e}`);
  console.log(`FAIL exception: ${e.stack ?? e}`);
} finally {
  await browser.close();
}
if (failures.length) {
  console.log(`${failures.length} check(s) failed:\n- ${failures.join("\n- ")}`);
  process.exit(1);
}
console.log("all web UI checks passed");
