// Runs the guest pages' SFrame implementation (webui/src/e2ee/sframe.ts, bundled by the test) in
// Debian's Chromium and checks it against RFC 9605's test vectors and against frames roomd's
// crate protected; protects the same frames itself for roomd to open. Prints one JSON line:
// {"event":"sframe","vectors":[{suite,kid,ctr,sealed,opened}],"opened":[{codec,plain}],
//  "protected":[{codec,protected}]} (byte strings in hex), or {"event":"error",…}.
//
//   node sframe-check.mjs --bundle sframe.iife.js --fixtures fixtures.json

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { fail, launch, report } from "./lib/driver.mjs";

const { values: args } = parseArgs({
  options: { bundle: { type: "string" }, fixtures: { type: "string" } },
});
if (!args.bundle || !args.fixtures) fail("usage: --bundle FILE --fixtures FILE");
const bundle = readFileSync(args.bundle, "utf8");
const fixtures = JSON.parse(readFileSync(args.fixtures, "utf8"));

const { page, close } = await launch();
try {
  await page.addScriptTag({ content: bundle });
  const result = await page.evaluate(async (fixtures) => {
    const S = window.roomdSframe;
    const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    const bytes = (text) => Uint8Array.from(text.match(/../g) ?? [], (h) => parseInt(h, 16));
    const vectors = [];
    for (const v of fixtures.vectors) {
      if (v.cipher_suite !== 4 && v.cipher_suite !== 5) continue;
      const key = await S.deriveKey(v.cipher_suite, BigInt(v.kid), bytes(v.base_key));
      const sealed = hex(await S.seal(key, BigInt(v.ctr), bytes(v.metadata), bytes(v.pt)));
      let opened = null;
      try {
        opened = hex(await S.unseal(new Map([[key.kid, key]]), bytes(v.metadata), bytes(v.ct)));
      } catch (e) {
        opened = `error: ${e}`;
      }
      vectors.push({ suite: v.cipher_suite, kid: v.kid, ctr: v.ctr, sealed, opened });
    }
    const roomKey = await S.deriveKey(S.CIPHER_SUITE, BigInt(fixtures.room_kid), bytes(fixtures.room_secret));
    const keys = new Map([[roomKey.kid, roomKey]]);
    const opened = [];
    for (const f of fixtures.frames) {
      try {
        opened.push({ codec: f.codec, plain: hex(await S.open(f.codec, keys, bytes(f.protected))) });
      } catch (e) {
        opened.push({ codec: f.codec, error: String(e) });
      }
    }
    const browserKey = await S.deriveKey(S.CIPHER_SUITE, BigInt(fixtures.browser_kid), bytes(fixtures.browser_secret));
    const sender = new S.Sender(browserKey);
    const protectedFrames = [];
    for (const f of fixtures.frames) {
      protectedFrames.push({ codec: f.codec, protected: hex(await S.protect(f.codec, sender, bytes(f.plain))) });
    }
    return { vectors, opened, protected: protectedFrames };
  }, fixtures);
  report("sframe", result);
} catch (e) {
  report("error", { message: String(e) });
} finally {
  await close();
}
