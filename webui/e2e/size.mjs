// Size of the built web UI: gzipped JavaScript + CSS in dist/assets (target ≤ 250 kB).
import { readdirSync, readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";

const dir = new URL("../dist/assets/", import.meta.url).pathname;
let raw = 0;
let gzipped = 0;
for (const name of readdirSync(dir).filter((n) => /\.(js|css)$/.test(n))) {
  const bytes = readFileSync(join(dir, name));
  raw += bytes.length;
  gzipped += gzipSync(bytes, { level: 9 }).length;
}
const limit = 250 * 1024;
console.log(`BENCH web UI size: ${(gzipped / 1024).toFixed(1)} kB gzipped JS+CSS (${(raw / 1024).toFixed(1)} kB raw); target ≤ 250 kB`);
process.exit(gzipped <= limit ? 0 : 1);
