/**
 * What the route schemas cannot say by themselves in the OpenAPI document:
 * an `operationId` for every operation (from its summary), `security: []` on
 * the calls that need no token, the licence, a `webhooks` section with every
 * event carehooks sends, and shared `components.schemas`, for code
 * generators and API tools.
 */
import { isDeepStrictEqual } from "node:util";
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

type OpenApiObject = Record<string, unknown> & {
  info?: Record<string, unknown>;
  components?: Record<string, unknown> & { schemas?: Record<string, unknown> };
};

/** A component's name: a schema titled like this is shared (`Webhook`, `Delivery`, `AppointmentCreatedEvent`). */
const COMPONENT_NAME = /^[A-Z][A-Za-z0-9]+$/;

/**
 * Moves every object schema with a component-like `title` into
 * `components.schemas` under that title, leaving a `$ref` where it was: one
 * definition per resource, named, that code generators turn into one type.
 * Two different schemas with one title are a mistake in the route schemas.
 */
export function shareSchemas<T>(node: T, schemas: Record<string, unknown>): T {
  if (Array.isArray(node)) return node.map((item) => shareSchemas(item, schemas)) as T;
  if (node === null || typeof node !== "object") return node;
  const copy = Object.fromEntries(Object.entries(node).map(([key, value]) => [key, shareSchemas(value, schemas)]));
  const title = copy.title;
  if (typeof title !== "string" || !COMPONENT_NAME.test(title) || copy.type !== "object") return copy as T;
  const known = schemas[title];
  if (known === undefined) schemas[title] = copy;
  else if (!isDeepStrictEqual(known, copy)) throw new Error(`two different schemas are titled ${title}`);
  return { $ref: `#/components/schemas/${title}` } as T;
}

/** `appointment.created` → `AppointmentCreatedEvent`. */
const eventComponent = (name: string) => `${name.replace(/(^|\.)(\w)/g, (_, __, c: string) => c.toUpperCase())}Event`;

/** Adds the licence, the webhooks section and the shared schemas to the generated document. */
export function withExtras(document: OpenApiObject): OpenApiObject {
  const schemas: Record<string, unknown> = { ...document.components?.schemas };
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
              "application/json": {
                schema: { ...JSON.parse(JSON.stringify(entry.schema)), title: eventComponent(entry.name) },
                example: entry.example,
              },
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
    paths: shareSchemas(document.paths, schemas),
    webhooks: shareSchemas(webhooks, schemas),
    components: { ...document.components, schemas: Object.fromEntries(Object.entries(schemas).sort()) },
  };
}
