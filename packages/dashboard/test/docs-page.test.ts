/**
 * The interactive API reference at /docs, in Debian's Chromium: it renders
 * every operation from the server's own assets under its CSP, searches by
 * tag, and a call tried from the page reaches the API.
 */
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Server, startServer } from "../../server/test/support/binary.js";
import { tempDir } from "../../server/test/support/databases.js";
import { chromiumOrSkip, launch, watchConsole } from "./support/browser.js";

const chromiumPath = chromiumOrSkip();

describe.skipIf(chromiumPath === undefined)("the API reference at /docs in Chromium", () => {
  let server: Server;
  let browser: Browser;
  beforeAll(async () => {
    server = await startServer({ CAREHOOKS_DATA_DIR: tempDir() });
    browser = await launch(chromiumPath as string);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop("SIGTERM");
  });

  it("renders every operation from local assets, filters by tag, and tries a call", { timeout: 60_000 }, async () => {
    const page = await browser.newPage();
    const errors = watchConsole(page);
    const outside: string[] = [];
    page.on("request", (request) => {
      if (!request.url().startsWith(server.url)) outside.push(request.url());
    });
    await page.goto(`${server.url}/docs/`);
    await page.waitForSelector(".opblock", { timeout: 20_000 });
    const operations = await page.locator(".opblock").count();
    expect(operations).toBeGreaterThan(30);
    // Search: the filter box narrows to one tag.
    await page.fill(".operation-filter-input", "webhooks");
    await page.waitForFunction(() => document.querySelectorAll(".opblock-tag-section").length === 1);
    await page.fill(".operation-filter-input", "");
    // Try it out: GET /healthz needs no token.
    const health = page.locator(".opblock", { hasText: "/healthz" }).first();
    await health.locator(".opblock-summary-path", { hasText: "/healthz" }).click({ timeout: 5000 });
    await health.locator("button.execute").click({ timeout: 5000 });
    await health
      .locator(".live-responses-table .response-col_status", { hasText: "200" })
      .first()
      .waitFor({ timeout: 5000 });
    expect(outside, outside.join(" ")).toEqual([]);
    expect(errors, errors.join(" ")).toEqual([]);
    await page.close();
  });
});
