import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { openApiDocument } from "../src/cli/openapi.js";

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
});
