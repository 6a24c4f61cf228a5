/** docs/openapi.json passes Redocly's recommended rules with no error (warnings are allowed). */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../../", import.meta.url));

describe("the OpenAPI document", () => {
  it("lints clean with @redocly/cli", { timeout: 120_000 }, async () => {
    const result = await promisify(execFile)("npx", ["redocly", "lint", "docs/openapi.json", "--format=stylish"], {
      cwd: root,
      env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" },
    }).catch((error: { stdout: string; stderr: string; code: number }) => error);
    const output = `${result.stdout}${result.stderr}`;
    expect(output, output).not.toMatch(/\berror\b/);
    expect(output).toMatch(/Woohoo! Your API description is valid|validated in/);
  });
});
