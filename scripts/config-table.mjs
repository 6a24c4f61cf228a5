// Rewrites the configuration table in README.md, and docs/configuration.md, from the settings table in the code.
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

fs.writeFileSync(
  "docs/configuration.md",
  `# Configuration

Generated from the settings table in the code (\`packages/server/src/config/settings.ts\`)
by \`npm run docs\`; do not edit by hand.

Every setting is the environment variable in the table and the \`carehooks serve\`
flag of the same name in kebab case without the prefix (\`CAREHOOKS_MAX_IN_FLIGHT\`
is \`--max-in-flight\`); a flag wins over the environment, which wins over the
default. Durations take \`ms\`, \`s\`, \`m\`, \`h\` or \`d\` (\`1500ms\`, \`5m\`; a bare
number is milliseconds); sizes \`B\`, \`KiB\`, \`MiB\` or \`GiB\`; booleans \`true\` or
\`false\`. A value that does not parse stops the process with exit code 2 and a
message naming the variable.

${table}
`,
);
