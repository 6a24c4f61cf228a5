// Rewrites the configuration table in README.md from the settings table in the code.
import fs from "node:fs";
import { SETTINGS } from "../packages/server/dist/config/settings.js";

const rows = Object.values(SETTINGS).map((s) => {
  const shown = s.default === undefined || s.default === "" ? "" : `\`${s.default}\``;
  return `| \`CAREHOOKS_${s.name}\` | ${shown} | ${s.doc} |`;
});
const table = ["| variable | default | meaning |", "| --- | --- | --- |", ...rows].join("\n");
const readme = fs.readFileSync("README.md", "utf8");
const updated = readme.replace(
  /<!-- config:start -->[\s\S]*<!-- config:end -->/,
  `<!-- config:start -->\n${table}\n<!-- config:end -->`,
);
if (updated === readme && !readme.includes("<!-- config:start -->")) throw new Error("README.md has no config markers");
fs.writeFileSync("README.md", updated);
