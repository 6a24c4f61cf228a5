/**
 * `/dashboard`: the web dashboard's static files (built by `@carehooks/dashboard`
 * into its `dist/`), read into memory once at start (they are small), with a
 * Content-Security-Policy that allows nothing but this server: the page runs
 * only its own script and talks only to this API. `/dashboard/config.json`
 * hands the page its branding before anyone signs in.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import type { FastifyReply } from "fastify";
import { notFound } from "../domain/errors.js";
import type { App, AppContext } from "./context.js";

const PREFIX = "/dashboard";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".webmanifest": "application/manifest+json",
};

interface StaticFile {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
  /** Vite names files under assets/ by their content hash: they never change under one name. */
  readonly immutable: boolean;
}

/** The built dashboard's directory, or undefined when the package or its build is missing. */
export function dashboardDir(): string | undefined {
  try {
    const manifest = createRequire(import.meta.url).resolve("@carehooks/dashboard/package.json");
    const dist = path.join(path.dirname(manifest), "dist");
    return fs.existsSync(path.join(dist, "index.html")) ? dist : undefined;
  } catch {
    return undefined;
  }
}

function readTree(root: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        walk(full);
        continue;
      }
      const relative = path.relative(root, full).split(path.sep).join("/");
      const body = fs.readFileSync(full);
      files.set(relative, {
        body,
        type: TYPES[path.extname(entry.name)] ?? "application/octet-stream",
        etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`,
        immutable: relative.startsWith("assets/"),
      });
    }
  };
  walk(root);
  return files;
}

/**
 * Self only. Images may also come over https: a brand's logo usually lives on
 * the platform's own site. Inline scripts and styles are refused (the build
 * emits none; the accent colour is set through the CSSOM, which CSP allows).
 */
export function contentSecurityPolicy(frameAncestors: string): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: https:",
    "connect-src 'self'",
    "font-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    `frame-ancestors ${frameAncestors}`,
  ].join("; ");
}

export function dashboardRoutes(app: App, ctx: AppContext, dir: string | undefined = dashboardDir()): void {
  const files = dir ? readTree(dir) : new Map<string, StaticFile>();
  const csp = contentSecurityPolicy(ctx.config.dashboardFrameAncestors);
  const branding = {
    product_name: ctx.config.brandName,
    logo_url: ctx.config.brandLogoUrl ?? null,
    accent_color: ctx.config.brandAccentColor,
  };

  const secure = (reply: FastifyReply) =>
    reply
      .header("content-security-policy", csp)
      .header("x-content-type-options", "nosniff")
      // The portal link carries its token in the fragment, which no Referer includes; no-referrer keeps paths private too.
      .header("referrer-policy", "no-referrer")
      .header("cross-origin-opener-policy", "same-origin");

  const send = (reply: FastifyReply, file: StaticFile, ifNoneMatch: string | undefined) => {
    secure(reply)
      .header("etag", file.etag)
      .header("cache-control", file.immutable ? "public, max-age=31536000, immutable" : "no-cache");
    if (ifNoneMatch === file.etag) return reply.status(304).send();
    return reply.type(file.type).send(file.body);
  };

  app.get(`${PREFIX}/config.json`, { schema: { hide: true } }, async (_request, reply) => {
    secure(reply).header("cache-control", "no-cache");
    return { branding, version: 1 };
  });

  const serve = async (request: { params: unknown; headers: Record<string, unknown> }, reply: FastifyReply) => {
    const wanted = ((request.params as { "*"?: string })["*"] ?? "").replace(/^\/+/, "");
    const etag = typeof request.headers["if-none-match"] === "string" ? request.headers["if-none-match"] : undefined;
    const file = files.get(wanted);
    if (file) return send(reply, file, etag);
    // A missing asset is a 404; any other path is a page of the app, which routes on the client.
    const index = files.get("index.html");
    if (!index || path.extname(wanted) !== "") {
      throw notFound(index ? "file" : "dashboard (not built: run npm run build)");
    }
    return send(reply, index, etag);
  };
  app.get(PREFIX, { schema: { hide: true } }, serve);
  app.get(`${PREFIX}/*`, { schema: { hide: true } }, serve);
}
