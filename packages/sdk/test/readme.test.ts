/**
 * The README's examples: the "Try it" block runs against the built package
 * (`npm run build` first), the others must at least parse (they need a server,
 * express or credentials), and every function the overview table names exists.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import * as sdk from "../src/index.js";

const README = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

function blocks(kind: "run" | "check"): string[] {
  const pattern = new RegExp(`<!-- readme-test: ${kind} -->\\n\`\`\`js\\n([\\s\\S]*?)\\n\`\`\``, "g");
  return [...README.matchAll(pattern)].map((match) => match[1]!);
}

function node(args: string[], input: string) {
  return spawnSync(process.execPath, args, { cwd: ROOT, input, encoding: "utf8", timeout: 20_000 });
}

describe("packages/sdk/README.md", () => {
  it("the Try it example runs and prints what the README says", () => {
    const [tryIt] = blocks("run");
    expect(tryIt).toBeDefined();
    const result = node(["--input-type=module"], tryIt!);
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe(
      "verified appointment.created apt_01JD3Q8W6X1B2C3D4E5F6G7H8J\nrefused NoMatchingSignatureError no_matching_signature\n",
    );
    expect(README).toContain("`verified appointment.created apt_01JD3Q8W6X1B2C3D4E5F6G7H8J`");
  });

  it("every other JavaScript example parses", () => {
    const examples = blocks("check");
    expect(examples.length).toBeGreaterThanOrEqual(5);
    for (const example of examples) {
      const result = node(["--input-type=module", "--check"], example);
      expect(result.status, `${result.stderr}\n${example}`).toBe(0);
    }
  });

  it("names only exports that exist", () => {
    const table = README.slice(README.indexOf("| you want to |"), README.indexOf("## Try it"));
    const names = [...table.matchAll(/`([A-Za-z_]+)[(`]/g)].map((match) => match[1]!);
    expect(names.length).toBeGreaterThan(10);
    // Types leave no trace at run time: look for them in the declarations instead.
    const declarations = ["../src/index.ts", "../src/events.ts", "../src/dedupe.ts"]
      .map((file) => readFileSync(new URL(file, import.meta.url), "utf8"))
      .join("\n");
    for (const name of names) {
      if (name in sdk) continue;
      expect(declarations, name).toMatch(new RegExp(`export (type|interface) ${name}\\b|type ${name}\\b`));
    }
  });
});
