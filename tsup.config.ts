import { defineConfig } from "tsup";

export default defineConfig([
  {
    entry: { index: "sdk/index.ts" },
    format: ["esm", "cjs"],
    dts: true,
    sourcemap: true,
    clean: true,
    target: "node20",
    // import.meta.url in the CommonJS build too: sdk/native/addon.ts finds the addon from it.
    shims: true,
  },
  {
    entry: { cli: "sdk/cli/main.ts" },
    format: ["esm"],
    sourcemap: true,
    target: "node20",
    banner: { js: "#!/usr/bin/env node" },
  },
]);
