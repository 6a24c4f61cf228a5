// Writes docs/cli.md from the built CLI's own --help, so the page cannot drift from the commands.
import { execFileSync } from "node:child_process";
import fs from "node:fs";

const BINARY = "packages/server/bin/carehooks.js";

function help(path) {
  // Not a terminal: commander wraps at 80 columns whatever the caller's window.
  return execFileSync(process.execPath, [BINARY, ...path, "--help"], {
    encoding: "utf8",
    env: { ...process.env, COLUMNS: "80" },
  });
}

/** The names under "Commands:" in a help text, without commander's own `help`. */
function subcommands(text) {
  const section = text.split("\nCommands:\n")[1];
  if (!section) return [];
  return section
    .split("\n")
    .map((line) => /^ {2}([a-z][\w-]*)/.exec(line)?.[1])
    .filter((name) => name && name !== "help");
}

const sections = [];
function walk(path) {
  const text = help(path);
  sections.push(`## \`carehooks${path.map((p) => ` ${p}`).join("")}\`\n\n\`\`\`text\n${text.trimEnd()}\n\`\`\``);
  for (const name of subcommands(text)) walk([...path, name]);
}
walk([]);

const page = `# Command line reference

Generated from \`carehooks … --help\` by \`npm run docs\`; do not edit by hand.

\`serve\`, \`migrate\` and \`clients\` work on the database directly and read the
[configuration](configuration.md); \`healthcheck\` probes a server and \`openapi\`
prints the API document, neither with a profile; the others call a server's API
with a profile stored by \`carehooks login\`. A command that fails exits non-zero and
says why on stderr (for an API error: its [code](errors.md) and request id).

${sections.join("\n\n")}
`;
fs.writeFileSync("docs/cli.md", page);
