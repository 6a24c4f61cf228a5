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
    };
    for (const [path, item] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        for (const [status, response] of Object.entries(operation.responses)) {
          if (Number(status) < 400) continue;
          const schema = response.content?.["application/json"]?.schema;
          expect(schema?.properties?.error?.required, `${method} ${path} ${status}`).toEqual([
            "code",
            "message",
            "request_id",
          ]);
        }
      }
    }
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
      expect(hook.post?.requestBody?.content?.["application/json"]?.schema).toBeDefined();
    }
  });
});
