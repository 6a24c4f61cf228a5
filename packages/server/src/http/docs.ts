/**
 * `/openapi.json` and `/docs`: the OpenAPI document generated from the route
 * schemas, and a self-contained page that renders it (no assets from elsewhere).
 */
import type { App } from "./context.js";

interface Operation {
  summary?: string;
  description?: string;
  tags?: string[];
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>;
  parameters?: { name: string; in: string; required?: boolean; description?: string }[];
}

const escapeHtml = (text: string): string =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string,
  );

function renderOperation(method: string, path: string, op: Operation): string {
  const body = op.requestBody?.content?.["application/json"]?.schema;
  const params = (op.parameters ?? [])
    .map((p) => `<li><code>${escapeHtml(p.name)}</code> (${p.in}${p.required ? ", required" : ""})</li>`)
    .join("");
  const responses = Object.entries(op.responses ?? {})
    .map(([status, response]) => {
      const schema = response.content?.["application/json"]?.schema;
      return `<details><summary>${status} ${escapeHtml(response.description ?? "")}</summary>${
        schema ? `<pre>${escapeHtml(JSON.stringify(schema, null, 2))}</pre>` : ""
      }</details>`;
    })
    .join("");
  return `<section class="op" id="${escapeHtml(`${method}-${path}`)}">
<h3><span class="m ${method}">${method.toUpperCase()}</span> <code>${escapeHtml(path)}</code></h3>
<p>${escapeHtml(op.summary ?? "")}</p>${op.description ? `<p class="d">${escapeHtml(op.description)}</p>` : ""}
${params ? `<h4>Parameters</h4><ul>${params}</ul>` : ""}
${body ? `<h4>Body</h4><pre>${escapeHtml(JSON.stringify(body, null, 2))}</pre>` : ""}
<h4>Responses</h4>${responses}</section>`;
}

export function renderDocsPage(document: {
  info: { title: string; version: string; description?: string };
  paths?: Record<string, Record<string, Operation>>;
}): string {
  const operations = Object.entries(document.paths ?? {}).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => ({ method, path, op })),
  );
  const byTag = new Map<string, string[]>();
  for (const { method, path, op } of operations) {
    const tag = op.tags?.[0] ?? "other";
    byTag.set(tag, [...(byTag.get(tag) ?? []), renderOperation(method, path, op)]);
  }
  const sections = [...byTag].map(([tag, ops]) => `<h2>${escapeHtml(tag)}</h2>${ops.join("")}`).join("");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(document.info.title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;color:#1d2430}
code,pre{font-family:ui-monospace,monospace}pre{background:#f4f6f8;padding:.6rem;overflow:auto;font-size:12px}
.op{border:1px solid #dde3ea;border-radius:6px;padding:.2rem 1rem;margin:1rem 0}.m{font-size:12px;padding:2px 6px;border-radius:3px;color:#fff;background:#555}
.get{background:#2f7d32}.post{background:#1565c0}.patch{background:#b26a00}.delete{background:#c62828}.d{color:#555}</style></head>
<body><h1>${escapeHtml(document.info.title)} <small>${escapeHtml(document.info.version)}</small></h1>
<p>${escapeHtml(document.info.description ?? "")}</p><p>Machine-readable: <a href="/openapi.json">/openapi.json</a></p>${sections}</body></html>`;
}

export function docsRoutes(app: App): void {
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  app.get("/docs", { schema: { hide: true } }, async (_request, reply) =>
    reply.type("text/html; charset=utf-8").send(renderDocsPage(app.swagger() as Parameters<typeof renderDocsPage>[0])),
  );
}
