// What every test participant driver shares: Debian's Chromium with fake camera and microphone,
// a page with the WebRTC code (lib/peer-page.js), JSON lines on stdout for the Rust harness
// (tests/src/browser.rs), and an HTTP client that verifies servers against a given CA.

import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const PAGE_SCRIPT = readFileSync(fileURLToPath(new URL("./peer-page.js", import.meta.url)), "utf8");
const started = Date.now();

// One JSON object per line on stdout; `t` is milliseconds since the driver started.
export function report(event, fields = {}) {
  process.stdout.write(`${JSON.stringify({ event, t: Date.now() - started, ...fields })}\n`);
}

// Ends the driver with an `error` line the harness shows in its failure message.
export function fail(message) {
  report("error", { message: String(message) });
  process.exit(1);
}

// Serves the participant page on 127.0.0.1: a secure context for getUserMedia without any
// certificate, and nothing from the internet.
async function servePage() {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>roomd test peer</title>` +
    `<script>${PAGE_SCRIPT}</script></head><body></body></html>`;
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(html);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

// Starts Debian's headless Chromium with a fake camera and microphone, and `extraArgs` added to
// the fixed flags (the project's list).
export function launchChromium(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--use-fake-device-for-media-stream",
      "--use-fake-ui-for-media-stream",
      // Real host addresses in ICE candidates instead of mDNS names, which nothing on the test
      // network resolves.
      "--disable-features=WebRtcHideLocalIpsWithMdns",
      ...extraArgs,
    ],
  });
}

// Starts Chromium on the page. `extraArgs` are added to the fixed flags (the project's list).
export async function launch({ extraArgs = [] } = {}) {
  const server = await servePage();
  const browser = await launchChromium(extraArgs);
  const page = await browser.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") report("console", { text: message.text() });
  });
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  const close = async () => {
    await browser.close().catch(() => {});
    server.close();
  };
  return { browser, page, close };
}

// Reports the page's getStats() figures every `intervalMs` until the process ends.
export function reportStats(page, intervalMs) {
  const tick = async () => {
    try {
      report("stats", { peers: await page.evaluate(() => window.peer.stats()) });
    } catch (error) {
      report("console", { text: `getStats failed: ${error}` });
    }
    setTimeout(tick, intervalMs);
  };
  setTimeout(tick, intervalMs);
}

// An HTTP(S) request; HTTPS servers are verified against `ca` (PEM file) when given, else
// against the system's CAs. Resolves to {status, headers, body} for every status.
export function request(url, { method = "GET", headers = {}, body, ca, timeoutMs = 70000 } = {}) {
  const target = new URL(url);
  const client = target.protocol === "https:" ? https : http;
  const options = { method, headers: { ...headers }, timeout: timeoutMs };
  if (ca) options.ca = readFileSync(ca);
  if (body !== undefined) options.headers["content-length"] = Buffer.byteLength(body);
  return new Promise((resolve, reject) => {
    const req = client.request(target, options, (res) => {
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.on("end", () =>
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }),
      );
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${url}: no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// Closes Chromium when the harness stops the driver (SIGTERM) or closes stdin.
export function closeOnExit(close) {
  let closing = false;
  const stop = async () => {
    if (closing) return;
    closing = true;
    await close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.stdin.on("end", stop);
  process.stdin.resume();
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
