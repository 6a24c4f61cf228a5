/**
 * Every command line and API call the README and docs show must exist: each
 * `npx carehooks …` names a real command with flags it takes, and each
 * `curl … $URL/…` a route of the OpenAPI document with that method. What the
 * examples do is tested elsewhere; this keeps them from drifting away from
 * the code.
 */
import fs from "node:fs";
import type { Command, Option } from "commander";
import { describe, expect, it } from "vitest";
import { buildProgram } from "../src/cli/program.js";

const root = new URL("../../../", import.meta.url);
const PAGES = [
  "README.md",
  "docs/webhooks.md",
  "docs/retries.md",
  "docs/errors.md",
  "examples/receiver/README.md",
  "packages/sdk/README.md",
];
const text = (page: string) => fs.readFileSync(new URL(page, root), "utf8");

/** Shell lines of the page's code blocks, with `\` continuations joined and comments dropped. */
function shellLines(page: string): string[] {
  const blocks: string[] = [];
  let open: { shell: boolean; lines: string[] } | undefined;
  for (const line of text(page).split("\n")) {
    const fence = /^```(\w*)/.exec(line);
    if (fence && open) {
      if (open.shell) blocks.push(open.lines.join("\n"));
      open = undefined;
    } else if (fence) {
      // Shell blocks only: unlabelled, sh, bash or shell.
      open = { shell: ["", "sh", "bash", "shell"].includes(fence[1] ?? ""), lines: [] };
    } else open?.lines.push(line);
  }
  return blocks.flatMap((block) =>
    block
      .replace(/\\\n\s*/g, " ")
      .split("\n")
      .map((line) => line.replace(/\s+#\s.*$/, "").trim())
      .filter((line) => line && !line.startsWith("#")),
  );
}

/** Words of a command line; quoted strings stay one word. */
function words(line: string): string[] {
  return [...line.matchAll(/'[^']*'|"[^"]*"|\S+/g)].map((match) => match[0].replace(/^['"]|['"]$/g, ""));
}

function findCommand(program: Command, path: string[]): { command: Command; rest: string[] } {
  let command = program;
  let i = 0;
  for (; i < path.length; i++) {
    const next = command.commands.find((sub) => sub.name() === path[i]);
    if (!next) break;
    command = next;
  }
  return { command, rest: path.slice(i) };
}

const flagsOf = (command: Command) =>
  new Set(
    (command.options as readonly Option[]).flatMap((option) => [option.long, option.short].filter(Boolean) as string[]),
  );

describe("the commands the docs show", () => {
  const program = buildProgram();
  const lines = PAGES.flatMap((page) =>
    shellLines(page)
      .filter((line) => /^(npx )?carehooks /.test(line))
      .map((line) => ({ page, line })),
  );

  it("finds some to check", () => {
    expect(lines.length).toBeGreaterThan(10);
  });

  it.each(lines)("$page: $line", ({ line }) => {
    const [, ...rest] = words(line.replace(/^npx /, ""));
    const { command, rest: args } = findCommand(program, rest);
    expect(command, `no such command in "${line}"`).not.toBe(program);
    expect(command.commands.length, `"${line}" stops at a command group`).toBe(0);
    const known = flagsOf(command);
    for (const arg of args.filter((word) => word.startsWith("-") && word !== "--")) {
      const flag = arg.split("=")[0] as string;
      expect(known.has(flag) || flag === "--help", `${flag} is not a flag of "${command.name()}"`).toBe(true);
    }
  });
});

describe("the API calls the docs show", () => {
  const openapi = JSON.parse(text("docs/openapi.json")) as { paths: Record<string, Record<string, unknown>> };
  const routes = Object.entries(openapi.paths).map(([path, methods]) => ({
    pattern: new RegExp(`^${path.replace(/\{[^}]+\}/g, "[^/]+")}$`),
    methods: new Set(Object.keys(methods).map((method) => method.toUpperCase())),
  }));
  const calls = PAGES.flatMap((page) =>
    shellLines(page)
      .filter((line) => line.startsWith("curl ") && line.includes("$URL/"))
      .map((line) => {
        const path = (/\$URL(\/[^\s'"?]*)/.exec(line)?.[1] ?? "").replace(/\/$/, "");
        const method = /-X (\w+)/.exec(line)?.[1] ?? (/ -d /.test(` ${line} `) ? "POST" : "GET");
        return { page, method, path };
      }),
  );

  it("finds some to check", () => {
    expect(calls.length).toBeGreaterThan(10);
  });

  it.each(calls)("$page: $method $path", ({ method, path }) => {
    const route = routes.find((candidate) => candidate.pattern.test(path));
    expect(route, `${path} is not a route`).toBeDefined();
    expect(route?.methods.has(method), `${method} ${path}`).toBe(true);
  });
});
