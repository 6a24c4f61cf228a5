import { defineConfig } from "vite";

/** Served by carehooks under /dashboard/; everything is bundled, nothing is fetched from elsewhere at run time. */
export default defineConfig({
  base: "/dashboard/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  // `npm run dev -w @carehooks/dashboard`: the page from Vite with live reload, the API from `npm start`.
  server: {
    proxy: Object.fromEntries(
      ["/connect-auth", "/notification", "/audit", "/dr", "/dashboard/config.json"].map((path) => [
        path,
        process.env.CAREHOOKS_URL ?? "http://127.0.0.1:8080",
      ]),
    ),
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // The CSP has no 'unsafe-inline': keep even tiny assets as files instead of data: URLs in scripts.
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: true,
  },
});
