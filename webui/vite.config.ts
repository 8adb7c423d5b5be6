import { defineConfig } from "vite";

// Preact through esbuild's automatic JSX runtime: no Babel plugin needed.
export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "dist",
    assetsDir: "assets",
    // The page CSP forbids inline scripts: Vite's module-preload polyfill would be one.
    modulePreload: { polyfill: false },
    target: "es2020",
    cssCodeSplit: false,
    sourcemap: false,
  },
});
