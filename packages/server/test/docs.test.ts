import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { envName, SETTINGS } from "../src/config/settings.js";
import { ERROR_CATALOG } from "../src/domain/errors.js";
import { BINARY } from "./support/binary.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), "utf8");

/** The repository's own text files, as git lists them (generated lock file aside). */
function trackedTextFiles(): string[] {
  return execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard"], {
    cwd: ROOT,
    encoding: "utf8",
  })
    .split("\n")
    .filter((file) => file && /\.(md|ts|mjs|js|json|ya?ml)$/.test(file) && !file.endsWith("package-lock.json"))
    .filter((file) => fs.existsSync(path.join(ROOT, file)));
}

/** A reference resolves beside the file that makes it, from the repository's root, or among the docs pages. */
function resolves(from: string, target: string): boolean {
  const clean = decodeURIComponent(target.split("#")[0] ?? "");
  if (clean === "") return true;
  return [path.join(ROOT, path.dirname(from), clean), path.join(ROOT, clean), path.join(ROOT, "docs", clean)].some(
    (candidate) => fs.existsSync(candidate),
  );
}

describe("the documentation", () => {
  it("points only at files that are in the repository", () => {
    const dangling: string[] = [];
    for (const file of trackedTextFiles()) {
      const text = read(file);
      // Any mention of a Markdown file, in prose, comments or descriptions.
      for (const [name] of text.matchAll(/[\w./-]*[\w-]\.md\b/g)) {
        if (!resolves(file, name)) dangling.push(`${file}: ${name}`);
      }
      // Every relative link of a Markdown page.
      if (file.endsWith(".md")) {
        for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
          if (target && !/^(https?:|mailto:|#)/.test(target) && !resolves(file, target)) {
            dangling.push(`${file}: ${target}`);
          }
        }
      }
    }
    expect(dangling).toEqual([]);
  });

  it("describes every error code", () => {
    const page = read("docs/errors.md");
    for (const [code, status] of Object.entries(ERROR_CATALOG)) expect(page).toContain(`| \`${code}\` | ${status} |`);
  });

  it("lists every setting in docs/configuration.md (regenerate with npm run docs)", () => {
    const page = read("docs/configuration.md");
    for (const setting of Object.values(SETTINGS)) {
      const shown = setting.default === undefined || setting.default === "" ? "" : `\`${setting.default}\``;
      expect(page).toContain(`| \`${envName(setting)}\` | ${shown} | ${setting.doc} |`);
    }
  });

  it("has every command's current help in docs/cli.md (regenerate with npm run docs)", () => {
    const page = read("docs/cli.md");
    for (const command of ["webhooks", "webhooks create", "webhooks secret", "deliveries recover", "listen"]) {
      const help = execFileSync(process.execPath, [BINARY, ...command.split(" "), "--help"], {
        encoding: "utf8",
        env: { ...process.env, COLUMNS: "80" },
      });
      expect(page).toContain(`## \`carehooks ${command}\`\n\n\`\`\`text\n${help.trimEnd()}\n\`\`\``);
    }
  });
});
