import { defineConfig } from "vite";

/** Served by carehooks under /dashboard/; everything is bundled, nothing is fetched from elsewhere at run time. */
export default defineConfig({
  base: "/dashboard/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // The CSP has no 'unsafe-inline': keep even tiny assets as files instead of data: URLs in scripts.
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: true,
  },
});
