/**
 * The SDK installs from the tarball `npm run pack:sdk` makes, the way its README tells
 * integrators to install it until it is published: into a fresh project, offline.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

describe("npm run pack:sdk", () => {
  it("makes a tarball a fresh project installs offline and imports", { timeout: 120_000 }, () => {
    const output = execFileSync("npm", ["run", "--silent", "pack:sdk", "--", "--no-build"], { cwd: root })
      .toString()
      .trim()
      .split("\n");
    const tarball = output.at(-1) as string;
    expect(tarball).toMatch(/carehooks-sdk-[\d.]+\.tgz$/);
    const project = fs.mkdtempSync(path.join(os.tmpdir(), "carehooks-sdk-user-"));
    try {
      fs.writeFileSync(
        path.join(project, "package.json"),
        JSON.stringify({ name: "user", private: true, type: "module" }),
      );
      execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", tarball], { cwd: project });
      const script = `
        import { verifyWebhook, signatureHeaders } from "@carehooks/sdk";
        import { CarehooksClient } from "@carehooks/sdk/client";
        const key = "whsec_" + Buffer.alloc(32, 7).toString("base64");
        const body = JSON.stringify({ event: "appointment.created", event_id: "evt_1", timestamp: Math.floor(Date.now() / 1000), data: {} });
        const headers = signatureHeaders({ body, webhookId: "evt_1", signingKey: key });
        console.log(verifyWebhook(body, headers, key).event, typeof CarehooksClient);`;
      fs.writeFileSync(path.join(project, "try.mjs"), script);
      expect(execFileSync("node", ["try.mjs"], { cwd: project }).toString().trim()).toBe(
        "appointment.created function",
      );
    } finally {
      fs.rmSync(project, { recursive: true, force: true });
    }
  });
});
