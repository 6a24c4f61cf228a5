import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { envName, SETTINGS } from "../src/config/settings.js";

const README = fs.readFileSync(new URL("../../../README.md", import.meta.url), "utf8");

describe("README", () => {
  it("documents every setting with its default and meaning", () => {
    for (const setting of Object.values(SETTINGS)) {
      const shown = setting.default === undefined || setting.default === "" ? "" : `\`${setting.default}\``;
      expect(README).toContain(`| \`${envName(setting)}\` | ${shown} | ${setting.doc} |`);
    }
  });

  it("shows the two set-up commands", () => {
    expect(README).toContain("npm ci && npm start");
    expect(README).toContain("npm test");
  });
});
