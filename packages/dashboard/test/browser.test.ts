/**
 * The dashboard in a real browser (Debian's Chromium via playwright-core)
 * against a real carehooks server and a real local receiver: sign in, create a
 * webhook, watch a delivery arrive live, open its attempts, resend, rotate the
 * key, recover, look at every page, open a portal link, sign out. Every page
 * passes axe-core with no serious or critical violation, logs no console
 * error, and is photographed into .test-results/dashboard/.
 */
import fs from "node:fs";
import http from "node:http";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, run, type Server, startServer } from "../../server/test/support/binary.js";
import { tempDir } from "../../server/test/support/databases.js";
import { booking, until } from "../../server/test/support/fixtures.js";
import { LOCAL_DELIVERY_ENV } from "../../server/test/support/harness.js";
import { type Receiver, startReceiver } from "../../server/test/support/receiver.js";
import { chromiumOrSkip, launch, screenshot, seriousViolations, watchConsole } from "./support/browser.js";

const chromiumPath = chromiumOrSkip();
const WEBHOOKS = "/notification/v1/connect/webhook/subscriptions";

interface Credentials {
  readonly client_id: string;
  readonly client_secret: string;
  readonly business_id: string;
}

describe.skipIf(chromiumPath === undefined)("the dashboard in Chromium", () => {
  let server: Server;
  let receiver: Receiver;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let consoleErrors: string[];
  let refreshes = 0;
  let admin: Credentials;
  let reader: Credentials;
  let auditor: Credentials;
  let dataDir: string;
  let webhookId: string;
  /** A clinic platform's page that shows the portal in an iframe. */
  let platform: http.Server;
  let platformPort: number;

  async function api<T = any>(method: string, path: string, body?: unknown, who: Credentials = admin): Promise<T> {
    const login = await fetch(`${server.url}/connect-auth/v1/account/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ client_id: who.client_id, client_secret: who.client_secret }),
    });
    const { access_token } = (await login.json()) as { access_token: string };
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${access_token}`, ...(body ? { "content-type": "application/json" } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** The checks every page gets. */
  async function checkPage(name: string, target: Page = page): Promise<void> {
    // Not "networkidle": the live pages keep their event stream open.
    await target.getByText("Loading…").waitFor({ state: "detached" });
    await screenshot(target, name);
    const violations = await seriousViolations(target);
    expect(violations, `${name}: ${JSON.stringify(violations, null, 2)}`).toEqual([]);
  }

  async function signIn(who: Credentials): Promise<void> {
    await page.goto(`${server.url}/dashboard/`);
    await page.getByLabel("Client ID").fill(who.client_id);
    await page.getByLabel("Client secret").fill(who.client_secret);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("button", { name: "Sign out" }).waitFor();
  }

  beforeAll(async () => {
    dataDir = tempDir("carehooks-dashboard-");
    const env = {
      CAREHOOKS_DATA_DIR: dataDir,
      CAREHOOKS_SQLITE_SYNCHRONOUS: "NORMAL",
      CAREHOOKS_LOGIN_RATE_LIMIT: "100000",
      // Short-lived access tokens: the dashboard must renew them on its own during the run.
      CAREHOOKS_ACCESS_TOKEN_TTL: "20s",
      ...LOCAL_DELIVERY_ENV,
    };
    const create = async (scopes: string) => {
      const made = await run(["clients", "create", "--business", "Browser Clinic", "--scopes", scopes, "--json"], env);
      if (made.code !== 0) throw new Error(made.stderr);
      return JSON.parse(made.stdout) as Credentials;
    };
    platformPort = await freePort();
    platform = http.createServer((request, response) => {
      const src = new URL(request.url ?? "/", "http://x").searchParams.get("src") ?? "";
      response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      response.end(
        `<!doctype html><html lang="en"><title>Platform</title><h1>Partner settings</h1><iframe title="Webhook portal" width="1000" height="700" src="${src.replaceAll('"', "&quot;")}"></iframe></html>`,
      );
    });
    await new Promise<void>((resolve) => platform.listen(platformPort, "127.0.0.1", resolve));
    Object.assign(env, { CAREHOOKS_DASHBOARD_FRAME_ANCESTORS: `'self' http://127.0.0.1:${platformPort}` });
    admin = await create("all");
    reader = await create("webhooks:read");
    auditor = await create("audit:read");
    receiver = await startReceiver("/hooks/carehooks");
    server = await startServer(env);
    browser = await launch(chromiumPath as string);
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    consoleErrors = watchConsole(page);
    page.on("request", (request) => {
      if (request.url().endsWith("/connect-auth/v1/account/refresh")) refreshes += 1;
    });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await receiver?.close();
    platform?.close();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("signs in, shows a visible keyboard focus, and lists no webhooks yet", async () => {
    await page.goto(`${server.url}/dashboard/`);
    await expect(page.getByRole("heading", { name: "Sign in" }).isVisible()).resolves.toBe(true);
    await checkPage("01-sign-in");

    // Tab to the first field: the focus ring is drawn.
    await page.keyboard.press("Tab");
    await page.keyboard.press("Tab");
    const outline = await page.evaluate(() => {
      const focused = document.activeElement as HTMLElement;
      return { tag: focused.tagName, style: getComputedStyle(focused).outlineStyle };
    });
    expect(outline.style).not.toBe("none");

    // A wrong secret is explained in words, with the request id.
    await page.getByLabel("Client ID").fill(admin.client_id);
    await page.getByLabel("Client secret").fill("chs_wrong-secret");
    await page.getByRole("button", { name: "Sign in" }).click();
    const problem = page.getByRole("alert");
    await problem.waitFor();
    expect(await problem.textContent()).toMatch(/invalid client credentials[\s\S]*Request id: req_/);
    // The 401 itself is a console error Chromium logs for any failed request: not the page's fault.
    consoleErrors.length = 0;

    await signIn(admin);
    for (const label of ["Webhooks", "Events", "Event types", "Access log", "Overview"]) {
      expect(await page.getByRole("link", { name: label, exact: true }).isVisible(), label).toBe(true);
    }
    await page.getByText("No webhooks yet").waitFor();
    await checkPage("02-webhooks-empty");
  }, 60_000);

  it("creates a webhook and watches a delivery arrive live", async () => {
    await page.getByRole("button", { name: "New webhook" }).click();
    await page.getByLabel("Endpoint URL").fill(receiver.url);
    await page.getByRole("checkbox", { name: "appointment.created" }).check();
    await page.getByRole("checkbox", { name: "appointment.updated" }).check();
    await checkPage("03-webhook-new");
    await page.getByRole("button", { name: "Create" }).click();
    await page.getByText("Webhook created.").waitFor();
    webhookId = decodeURIComponent(new URL(page.url()).pathname.split("/").pop() as string);
    expect(webhookId).toMatch(/^wh_/);
    await page.getByText("No deliveries match").waitFor();
    await page.locator(".live.on").waitFor();

    // An appointment booked through the API: its delivery shows up on the open page, no reload.
    await api("POST", "/dr/v1/business/appointments", booking);
    await receiver.waitFor(1);
    const row = page.locator("tr[data-delivery]").first();
    await row.getByText("succeeded").waitFor({ timeout: 15_000 });
    expect(await row.textContent()).toContain("appointment.created");
    await checkPage("04-webhook");
  }, 60_000);

  it("opens the delivery's attempts and resends it", async () => {
    await page.locator("tr[data-delivery] a").first().click();
    await page.getByRole("heading", { name: "Attempts" }).waitFor();
    const first = page.locator("tr[data-attempt='1']");
    await first.waitFor();
    expect(await first.textContent()).toContain("200");
    await checkPage("05-delivery");

    await page.getByRole("button", { name: "Resend" }).click();
    await page.getByText("Sent again").waitFor();
    await receiver.waitFor(2);
    await page.locator("tr[data-attempt='2']").waitFor({ timeout: 15_000 });
    expect(receiver.received[1]?.headers["webhook-id"] ?? receiver.received[1]?.headers["x-eka-webhook-id"]).toBe(
      receiver.received[0]?.headers["webhook-id"] ?? receiver.received[0]?.headers["x-eka-webhook-id"],
    );
    await page.getByRole("link", { name: "← Webhook" }).click();
  }, 60_000);

  it("reveals and rotates the signing key, showing the overlap", async () => {
    await page.getByRole("button", { name: "Reveal signing key" }).click();
    const key = page.getByTestId("signing-key");
    const before = await key.textContent();
    expect(before).toMatch(/^whsec_/);
    await page.getByRole("button", { name: "Rotate key" }).click();
    await page.getByText("Key rotated").waitFor();
    await page.getByText("still signs alongside the new one until").waitFor();
    await until(async () => (await key.textContent()) !== before, 5000, "the new key");
    const secret = (await api<{ data: { signing_key: string } }>("GET", `${WEBHOOKS}/${webhookId}/secret`)).data;
    expect(await key.textContent()).toBe(secret.signing_key);
    await checkPage("06-webhook-rotated");
  }, 60_000);

  it("recovers failed deliveries with progress", async () => {
    const before = receiver.received.length;
    receiver.answer = () => ({ status: 500, body: "down for maintenance" });
    await page.getByRole("button", { name: "Send test event" }).click();
    await page.getByText("Test event sent").waitFor();
    const failed = page.locator("tr[data-delivery]", { hasText: "failed" });
    await failed.first().waitFor({ timeout: 20_000 });
    receiver.answer = () => ({ status: 200 });
    const sentBefore = receiver.received.length;
    expect(sentBefore).toBeGreaterThan(before);

    await page.getByRole("button", { name: "Recover" }).click();
    await page.getByText(/succeeded: 1 of 1/).waitFor({ timeout: 20_000 });
    await receiver.waitFor(sentBefore + 1);
    await until(async () => (await failed.count()) === 0, 15_000, "the recovered delivery to succeed");
    await checkPage("07-webhook-recovered");
  }, 60_000);

  it("shows events live, finds one by id, and says which webhooks got it", async () => {
    await page.getByRole("link", { name: "Events", exact: true }).click();
    await page.locator("tr[data-event]").first().waitFor();
    await page.locator(".live.on").waitFor();
    const count = await page.locator("tr[data-event]").count();
    const booked = await api<{ appointment_id: string }>("POST", "/dr/v1/business/appointments", {
      ...booking,
      patient_id: "pat-live",
    });
    await until(async () => (await page.locator("tr[data-event]").count()) > count, 15_000, "the live event");
    const newest = page.locator("tr[data-event]").first();
    const eventId = (await newest.getAttribute("data-event")) as string;
    await page.getByLabel("Event id").fill(eventId);
    await page.getByRole("button", { name: "Find" }).click();
    const detail = page.getByRole("region", { name: "Event details" });
    await detail.getByText(webhookId).waitFor({ timeout: 15_000 });
    expect(await detail.textContent()).toContain(booked.appointment_id);
    await checkPage("08-events");
  }, 60_000);

  it("shows the event types, the access log with its downloads, and the overview chart", async () => {
    await page.getByRole("link", { name: "Event types" }).click();
    await page.getByRole("heading", { name: "prescription.updated" }).waitFor();
    await checkPage("09-event-types");

    const booked = await api<{ data: { appointment_id: string }[] }>("GET", "/dr/v1/business/appointments");
    await api("GET", `/dr/v1/business/appointments/${booked.data[0]?.appointment_id}`);
    await page.getByRole("link", { name: "Access log" }).click();
    await page.locator("tbody tr").first().waitFor();
    expect(await page.locator("tbody").textContent()).toContain("allowed");
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Download CSV" }).click(),
    ]);
    const csv = fs.readFileSync((await download.path()) as string, "utf8");
    expect(csv.split("\r\n")[0]).toContain("resource_type");
    expect(csv).toContain(booked.data[0]?.appointment_id);
    await checkPage("10-access-log");

    await page.getByRole("link", { name: "Overview" }).click();
    const chart = page.getByRole("img", { name: /Deliveries per minute/ });
    await chart.waitFor();
    expect(await page.locator(".chart .bar-ok").count()).toBeGreaterThan(0);
    await checkPage("11-overview");
  }, 60_000);

  it("fits a phone's width", async () => {
    await page.setViewportSize({ width: 375, height: 800 });
    for (const [path, name] of [
      [`/webhooks/${encodeURIComponent(webhookId)}`, "12-phone-webhook"],
      ["/overview", "13-phone-overview"],
    ] as const) {
      await page.getByRole("link", { name: "Webhooks", exact: true }).click();
      await page.evaluate((to) => {
        window.history.pushState(null, "", `/dashboard${to}`);
        window.dispatchEvent(new PopStateEvent("popstate"));
      }, path);
      await page.getByText("Loading…").waitFor({ state: "detached" });
      const overflow = await page.evaluate(() => {
        const wide = [...document.querySelectorAll("body *")]
          .filter((element) => element.getBoundingClientRect().right > window.innerWidth + 1)
          .map((element) => `${element.tagName}.${element.className}`);
        return { by: document.documentElement.scrollWidth - window.innerWidth, wide: wide.slice(0, 5) };
      });
      expect(overflow.by, `${name}: ${overflow.wide.join(", ")}`).toBeLessThanOrEqual(1);
      await checkPage(name);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  }, 60_000);

  it("shows an ed25519 webhook's public key and its own delivery settings", async () => {
    const created = await api<{ id: string; public_key: string }>("POST", WEBHOOKS, {
      endpoint: `${receiver.url}/ed25519`,
      event_names: ["webhook.disabled", "delivery.exhausted"],
      signature_scheme: "ed25519",
      filter: { "data.state": "disabled" },
      timeout: 1,
      retry_schedule: [],
      headers: { "x-gateway-token": "gw-secret" },
    });
    await page.evaluate((to) => {
      window.history.pushState(null, "", `/dashboard${to}`);
      window.dispatchEvent(new PopStateEvent("popstate"));
    }, `/webhooks/${created.id}`);
    await page.getByTestId("public-key").waitFor();
    expect(await page.getByTestId("public-key").textContent()).toBe(created.public_key);
    expect(await page.getByRole("button", { name: "Reveal signing key" }).count()).toBe(0);
    expect(await page.getByTestId("filter").textContent()).toBe('{"data.state":"disabled"}');
    const facts = (await page.locator("dl.facts").textContent()) ?? "";
    expect(facts).toContain("Timeout1 s");
    expect(facts).toContain("x-gateway-token: ********");
    expect(facts).not.toContain("gw-secret");
    // Rotating makes a new pair on the server; the page shows its public key.
    await page.getByRole("button", { name: "Rotate key" }).click();
    await page.getByText("Key pair rotated").waitFor();
    await until(
      async () => (await page.getByTestId("public-key").textContent()) !== created.public_key,
      5000,
      "the new public key",
    );
    expect(await page.getByTestId("public-key").textContent()).toMatch(/^whpk_/);
    // Leave its page before deleting it: the page would read it again, and a 404 is a console error.
    await page.getByRole("link", { name: "← Webhooks" }).click();
    await page.getByRole("heading", { name: "Webhooks" }).waitFor();
    await api("DELETE", `${WEBHOOKS}/${created.id}`);
  });

  it("edits, disables, enables and deletes a webhook (after confirming)", async () => {
    const spare = await api<{ id: string }>("POST", WEBHOOKS, {
      endpoint: `${receiver.url}/spare`,
      event_names: ["prescription.created"],
    });
    await page.evaluate((to) => {
      window.history.pushState(null, "", `/dashboard${to}`);
      window.dispatchEvent(new PopStateEvent("popstate"));
    }, `/webhooks/${spare.id}`);
    await page.getByRole("button", { name: "Edit" }).click();
    const form = page.getByRole("form", { name: "Edit webhook" });
    await form.getByRole("checkbox", { name: "prescription.updated" }).check();
    await form.getByRole("button", { name: "Save" }).click();
    await page.getByText("Webhook saved.").waitFor();
    const edited = (await api<{ data: { event_names: string[] } }>("GET", `${WEBHOOKS}/${spare.id}`)).data;
    expect(edited.event_names).toEqual(["prescription.created", "prescription.updated"]);

    await page.getByRole("button", { name: "Disable" }).click();
    await page.getByText("Webhook disabled").waitFor();
    await page.getByText(/disabled by cli_/).waitFor();
    await page.getByRole("button", { name: "Enable" }).click();
    await page.getByText("Webhook enabled.").waitFor();

    await page.getByRole("button", { name: "Delete" }).click();
    await page.getByRole("alertdialog").getByRole("button", { name: "Cancel" }).click();
    expect(await page.getByRole("alertdialog").count()).toBe(0);
    await page.getByRole("button", { name: "Delete" }).click();
    await until(
      async () => (await page.evaluate(() => document.activeElement?.textContent)) === "Cancel",
      2000,
      "the focus on Cancel",
    );
    await checkPage("15-webhook-delete-confirm");
    await page.getByRole("alertdialog").getByRole("button", { name: "Yes, delete" }).click();
    await page.getByRole("heading", { name: "Webhooks" }).waitFor();
    await page.locator("tbody tr").first().waitFor();
    expect(await page.locator("tbody").textContent()).not.toContain("/spare");
  }, 60_000);

  it("renewed the 20 s access token by itself, logged no console error on any page, and signs out (revoking the refresh token)", async () => {
    await until(() => refreshes > 0, 25_000, "a token refresh");
    // Still signed in, with a fresh token: a call made now succeeds.
    await page.getByRole("link", { name: "Event types" }).click();
    await page.getByRole("heading", { name: "appointment.created" }).waitFor();
    expect(consoleErrors).toEqual([]);
    const [logout] = await Promise.all([
      page.waitForResponse((response) => response.url().endsWith("/connect-auth/v1/account/logout")),
      page.getByRole("button", { name: "Sign out" }).click(),
    ]);
    await page.getByText("You are signed out.").waitFor();
    // The server revoked the refresh token: no copy of it renews the session.
    expect(logout.status()).toBe(204);
    const { refresh_token } = JSON.parse(logout.request().postData() ?? "{}") as { refresh_token: string };
    const renewed = await fetch(`${server.url}/connect-auth/v1/account/refresh`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ refresh_token }),
    });
    expect(renewed.status).toBe(401);
    expect(await page.getByLabel("Client ID").inputValue()).toBe("");
    // Nothing was kept anywhere the next visitor could find it.
    const stored = await page.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length }));
    expect(stored).toEqual({ local: 0, session: 0 });
  }, 60_000);

  it("hides the pages a client's scopes do not allow", async () => {
    await signIn(reader);
    expect(await page.getByRole("link", { name: "Webhooks", exact: true }).isVisible()).toBe(true);
    expect(await page.getByRole("link", { name: "Access log" }).count()).toBe(0);
    expect(await page.getByRole("button", { name: "New webhook" }).count()).toBe(0);
    await page.getByRole("button", { name: "Sign out" }).click();

    // A client that may only read the access log lands there, with no other page offered.
    await signIn(auditor);
    await page.getByRole("heading", { name: "Access log" }).waitFor();
    expect(await page.getByRole("navigation").getByRole("link").allTextContents()).toEqual(["Access log"]);
    await page.getByRole("button", { name: "Sign out" }).click();
  }, 30_000);

  it("opens a branded, read-only portal from a single-use link", async () => {
    const { data } = await api<{ data: { url: string } }>("POST", "/notification/v1/connect/webhook/portal-sessions", {
      read_only: true,
      branding: { product_name: "Acme Partner Portal", accent_color: "#6a1b9a" },
    });
    const portal = await browser.newContext({ viewport: { width: 1024, height: 800 } });
    const tab = await portal.newPage();
    const errors = watchConsole(tab);
    await tab.goto(data.url);
    await tab.getByRole("heading", { name: "Webhooks" }).waitFor();
    expect(await tab.getByText("Acme Partner Portal").isVisible()).toBe(true);
    expect(tab.url()).not.toContain("chp_");
    expect(await tab.getByRole("link", { name: "Access log" }).count()).toBe(0);
    expect(await tab.getByRole("button", { name: "New webhook" }).count()).toBe(0);
    expect(await tab.getByText("Portal (read-only)").isVisible()).toBe(true);
    expect(
      await tab.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue("--accent").trim()),
    ).toBe("#6a1b9a");
    await tab.getByRole("link", { name: receiver.url, exact: true }).click();
    await tab.getByRole("heading", { name: "Deliveries" }).waitFor();
    expect(await tab.getByRole("button", { name: "Rotate key" }).count()).toBe(0);
    await checkPage("14-portal", tab);
    expect(errors).toEqual([]);

    // The link works once.
    const again = await portal.newPage();
    await again.goto(data.url);
    const problem = again.getByRole("alert");
    await problem.waitFor();
    expect(await problem.textContent()).toMatch(/already used[\s\S]*Request id: req_/);
    await portal.close();
  }, 60_000);

  it("shows the portal in an iframe of the platform's origin, and in no other", async () => {
    const link = async () =>
      (
        await api<{ data: { url: string } }>("POST", "/notification/v1/connect/webhook/portal-sessions", {
          read_only: false,
        })
      ).data.url;
    const embedding = await browser.newContext();
    const tab = await embedding.newPage();
    await tab.goto(`http://127.0.0.1:${platformPort}/?src=${encodeURIComponent(await link())}`);
    const frame = tab.frameLocator("iframe");
    await frame.getByRole("heading", { name: "Webhooks" }).waitFor();
    expect(await frame.getByRole("button", { name: "New webhook" }).count()).toBe(1);
    await screenshot(tab, "16-portal-in-iframe");

    // The same page served from another origin (localhost is not 127.0.0.1): the browser refuses to frame it.
    const elsewhere = await embedding.newPage();
    const refused: string[] = [];
    elsewhere.on("console", (message) => refused.push(message.text()));
    await elsewhere.goto(`http://localhost:${platformPort}/?src=${encodeURIComponent(await link())}`);
    await until(() => refused.some((text) => text.includes("frame-ancestors")), 10_000, "the CSP refusal");
    expect(await elsewhere.frameLocator("iframe").getByRole("heading", { name: "Webhooks" }).count()).toBe(0);
    await embedding.close();
  }, 60_000);
});
