/**
 * What the route schemas cannot say by themselves in the OpenAPI document:
 * an `operationId` for every operation (from its summary), `security: []` on
 * the calls that need no token, the licence, and a `webhooks` section with
 * every event carehooks sends, for code generators and API tools.
 */
import { EVENT_CATALOG } from "../domain/event-catalog.js";

/** `Register a webhook endpoint` → `registerWebhookEndpoint`; unique within the document. */
export function operationIdFrom(summary: string, method: string, taken: Set<string>): string {
  const words = summary
    .replace(/\(.*?\)/g, " ")
    .replace(/['’]s\b/g, "")
    .split(/[^A-Za-z0-9]+/)
    .filter((word) => word && !["a", "an", "the", "its", "one", "or"].includes(word.toLowerCase()))
    .slice(0, 6);
  const base = words.map((word, i) => (i === 0 ? word.toLowerCase() : word[0]?.toUpperCase() + word.slice(1))).join("");
  let id = base || method.toLowerCase();
  for (let n = 2; taken.has(id); n++) id = `${base}${n}`;
  taken.add(id);
  return id;
}

type OpenApiObject = Record<string, unknown> & { info?: Record<string, unknown> };

/** Adds the licence and the webhooks section to the generated document. */
export function withExtras(document: OpenApiObject): OpenApiObject {
  const webhooks = Object.fromEntries(
    EVENT_CATALOG.map((entry) => [
      entry.name,
      {
        post: {
          operationId: `on${entry.name.replace(/(^|\.)(\w)/g, (_, __, c: string) => c.toUpperCase())}`,
          summary: entry.description,
          description:
            "Sent to every webhook subscribed to this event, signed (docs/webhooks.md in the carehooks repository). Answer 2xx once it is stored; anything else is retried.",
          tags: ["events"],
          security: [],
          requestBody: {
            required: true,
            // As plain JSON: a TypeBox schema also carries symbol-keyed fields of its own.
            content: {
              "application/json": { schema: JSON.parse(JSON.stringify(entry.schema)), example: entry.example },
            },
          },
          responses: { "200": { description: "Received; any 2xx will do" } },
        },
      },
    ]),
  );
  return {
    ...document,
    info: { ...document.info, license: { name: "Apache-2.0", identifier: "Apache-2.0" } },
    webhooks,
  };
}
