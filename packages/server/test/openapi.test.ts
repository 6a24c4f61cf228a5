import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { openApiDocument } from "../src/cli/openapi.js";
import { EVENT_NAMES } from "../src/domain/event-catalog.js";

const COMMITTED = new URL("../../../docs/openapi.json", import.meta.url);

describe("docs/openapi.json", () => {
  it("matches the document generated from the route schemas (regenerate with npm run openapi)", async () => {
    const committed = JSON.parse(fs.readFileSync(COMMITTED, "utf8"));
    expect(committed).toEqual(await openApiDocument());
  });

  it("documents every error status with the catalog's error shape", async () => {
    const document = (await openApiDocument()) as {
      paths: Record<
        string,
        Record<string, { responses: Record<string, { content?: Record<string, { schema: any }> }> }>
      >;
      components: { schemas: Record<string, any> };
    };
    // One shared definition, which every error answer refers to.
    expect(document.components.schemas.Error?.properties?.error?.required).toEqual(["code", "message", "request_id"]);
    for (const [path, item] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        for (const [status, response] of Object.entries(operation.responses)) {
          if (Number(status) < 400) continue;
          const schema = response.content?.["application/json"]?.schema;
          expect(schema, `${method} ${path} ${status}`).toEqual({ $ref: "#/components/schemas/Error" });
        }
      }
    }
  });

  it("shares one named schema per resource in components.schemas, each referred to and resolvable", async () => {
    const document = await openApiDocument();
    const schemas = (document as { components: { schemas: Record<string, unknown> } }).components.schemas;
    for (const name of ["Webhook", "Delivery", "Attempt", "Appointment", "Prescription", "Event", "Error"]) {
      expect(schemas[name], name).toMatchObject({ type: "object", title: name });
    }
    const text = JSON.stringify(document);
    const refs = new Set([...text.matchAll(/"\$ref":"#\/components\/schemas\/([A-Za-z0-9]+)"/g)].map((m) => m[1]));
    for (const ref of refs) expect(schemas[ref as string], ref).toBeDefined();
    // The webhook read is one definition used by the list, the get, enable and disable.
    expect(text.match(/"\$ref":"#\/components\/schemas\/Webhook"/g)?.length).toBeGreaterThanOrEqual(4);
  });

  it("shows the Idempotency-Key header on every POST and PATCH that takes one, and nowhere else", async () => {
    const document = (await openApiDocument()) as {
      paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>>;
    };
    // Their answers hold secrets that are never stored (or nothing, for logout): no answer to replay.
    const keyless = [
      "post /connect-auth/v1/account/login",
      "post /connect-auth/v1/account/refresh",
      "post /connect-auth/v1/account/logout",
      "post /notification/v1/connect/webhook/portal-sessions",
      "post /connect-auth/v1/portal-sessions/exchange",
    ];
    const operations = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, operation]) => ({ name: `${method} ${path}`, method, operation })),
    );
    const shown = operations
      .filter(({ operation }) => operation.parameters?.some((p) => p.in === "header" && p.name === "idempotency-key"))
      .map(({ name }) => name);
    const writes = operations
      .filter(({ method, name }) => (method === "post" || method === "patch") && !keyless.includes(name))
      .map(({ name }) => name);
    expect(writes.length).toBeGreaterThanOrEqual(15);
    expect(shown.sort()).toEqual(writes.sort());
  });

  it("names every operation, says which need no token, and describes every event sent", async () => {
    const document = (await openApiDocument()) as {
      info: { license?: { identifier?: string } };
      paths: Record<string, Record<string, { operationId?: string; security?: unknown[] }>>;
      webhooks?: Record<string, { post?: { requestBody?: { content?: Record<string, { schema?: unknown }> } } }>;
    };
    const operations = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, operation]) => ({ path, method, operation })),
    );
    const ids = operations.map(({ operation }) => operation.operationId);
    expect(ids.every((id) => typeof id === "string" && /^[a-z][A-Za-z0-9]*$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    const login = document.paths["/connect-auth/v1/account/login"]?.post;
    expect(login?.security).toEqual([]);
    const list = document.paths["/notification/v1/connect/webhook/subscriptions"]?.get;
    expect(list?.security).toEqual([{ bearer: [] }, { legacyAuth: [] }]);
    expect(document.info.license?.identifier).toBe("Apache-2.0");
    expect(Object.keys(document.webhooks ?? {}).sort()).toEqual(EVENT_NAMES.slice().sort());
    for (const hook of Object.values(document.webhooks ?? {})) {
      expect(hook.post?.requestBody?.content?.["application/json"]?.schema).toMatchObject({
        $ref: expect.stringMatching(/^#\/components\/schemas\/[A-Za-z]+Event$/),
      });
    }
  });
});
