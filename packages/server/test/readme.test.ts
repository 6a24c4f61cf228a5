import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { envName, SETTINGS } from "../src/config/settings.js";

const README = fs.readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
/** Table cells compared without their padding. */
const squeeze = (text: string) => text.replace(/[ \t]+/g, " ");

describe("README", () => {
  it("documents every setting with its default and meaning", () => {
    for (const setting of Object.values(SETTINGS)) {
      const shown = setting.default === undefined || setting.default === "" ? "" : `\`${setting.default}\``;
      expect(squeeze(README)).toContain(squeeze(`| \`${envName(setting)}\` | ${shown} | ${setting.doc} |`));
    }
  });

  it("shows the two set-up commands", () => {
    expect(README).toContain("npm ci && npm start");
    expect(README).toContain("npm test");
  });
});
