/**
 * Debian's Chromium driven by playwright-core (never a downloaded browser),
 * with the checks every page gets: axe-core, console errors, a screenshot.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, chromium, type Page } from "playwright-core";

export const SCREENSHOTS = fileURLToPath(new URL("../../../../.test-results/dashboard/", import.meta.url));

/** The system's Chromium, or undefined when there is none. */
export function findChromium(): string | undefined {
  const given = process.env.CAREHOOKS_CHROMIUM;
  if (given) return given;
  for (const name of ["chromium", "chromium-browser"]) {
    try {
      const found = execFileSync("which", [name], { encoding: "utf8" }).trim();
      if (found) return found;
    } catch {
      // not on PATH under this name
    }
  }
  return undefined;
}

/**
 * Whether the browser tests run: without Chromium they skip with a loud
 * notice, except in CI (CI=true), where a missing browser is a failure.
 */
export function chromiumOrSkip(): string | undefined {
  const found = findChromium();
  if (found) return found;
  if (process.env.CI === "true") {
    throw new Error("Chromium is missing and CI=true: install it (apt-get install -y chromium); .ci/run does");
  }
  process.stderr.write(
    `\n${"!".repeat(78)}\n!! Chromium not found: the dashboard's browser tests are SKIPPED.\n!! Install it with: apt-get install -y chromium\n${"!".repeat(78)}\n\n`,
  );
  return undefined;
}

export function launch(executablePath: string): Promise<Browser> {
  return chromium.launch({
    executablePath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}

/** Collects what the page logs as errors (and uncaught exceptions), to assert there are none. */
export function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`${page.url()}: ${message.text()}`);
  });
  page.on("pageerror", (error) => errors.push(`${page.url()}: uncaught ${error.message}`));
  return errors;
}

const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

export interface AxeViolation {
  readonly id: string;
  readonly impact: string | null;
  readonly help: string;
  readonly targets: string[];
}

/**
 * Runs axe-core on the page and answers its serious and critical violations.
 * Injected through the DevTools protocol: the page's CSP (rightly) refuses an
 * inline script tag.
 */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const result = await (
      window as unknown as {
        axe: {
          run: (
            context: unknown,
            options: unknown,
          ) => Promise<{
            violations: { id: string; impact: string | null; help: string; nodes: { target: string[] }[] }[];
          }>;
        };
      }
    ).axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((violation) => ({
      id: violation.id,
      impact: violation.impact,
      help: violation.help,
      targets: violation.nodes.map((node) => node.target.join(" ")),
    }));
  });
  return violations.filter((violation) => violation.impact === "serious" || violation.impact === "critical");
}

export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
