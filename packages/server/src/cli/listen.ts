/**
 * `carehooks listen --forward-to http://localhost:PORT/PATH`: develop a
 * receiver on localhost with nothing exposed. The CLI follows the server's
 * event stream and forwards each event to the local URL as a real webhook
 * request, signed with a key kept in the profile (so the receiver's
 * configuration survives a restart of `listen`; `--new-key` makes another).
 * A local receiver that is down or answers 5xx gets the event again a few
 * times, with backoff, before `listen` reports it and moves on.
 */
import { randomBytes } from "node:crypto";
import { Command } from "commander";
import { signatureHeaders } from "../domain/signing.js";
import { version } from "../version.js";
import {
  apiFor,
  type EventOptions,
  eventsOf,
  type IntegratorOptions,
  withEventOption,
  withProfile,
} from "./integrator.js";
import { saveListenKey, storedListenKey } from "./profile.js";
import { followStream } from "./stream-client.js";

const FORWARD_TIMEOUT_MS = 10_000;
/** Waits before each further try at a local receiver that is down or failing. */
const RETRY_DELAYS_MS = [500, 1_000, 2_000, 4_000];
/** Headers `-H` may not set: what the request is and how it is signed. */
const RESERVED = /^(content-type|content-length|host|user-agent|webhook-.*|eka-webhook-signature)$/i;

interface ListenOptions extends IntegratorOptions, EventOptions {
  readonly forwardTo: string;
  readonly signingKey?: string;
  readonly newKey?: boolean;
  readonly printJson?: boolean;
  readonly header: string[];
}

export function listenCommand(): Command {
  return withProfile(
    withEventOption(new Command("listen"), "only these event names")
      .description("Forward the server's events to a local URL, signed with the profile's listen key")
      .requiredOption("--forward-to <url>", "local receiver, e.g. http://localhost:3000/webhooks/carehooks")
      .option("--signing-key <key>", "sign with this key (not stored)")
      .option("--new-key", "make a new listen key for this profile (the old one stops working)")
      .option("--print-json", "print each event's body too")
      .option(
        "-H, --header <name:value>",
        "add a header to every forwarded request (repeatable)",
        (value: string, previous: string[]) => [...previous, value],
        [],
      ),
  ).action(async (options: ListenOptions) => {
    const target = new URL(options.forwardTo);
    if (target.protocol !== "http:" && target.protocol !== "https:")
      throw new Error("--forward-to must be an http(s) URL");
    const extra = headersOf(options.header);
    const key = listenKey(options);
    const say = (line: unknown) => process.stdout.write(`${typeof line === "string" ? line : JSON.stringify(line)}\n`);
    if (options.json) say({ signing_key: key, forward_to: target.href });
    else {
      say(`Forwarding events to ${target.href}`);
      say(`Signing key: ${key}`);
      say("Verify with it as you would with your webhook's key (kept for this profile; --new-key makes another).");
      say("Ctrl-C to stop.");
    }
    await followStream(apiFor(options), {
      events: eventsOf(options),
      onEvent: async (event) => {
        const started = performance.now();
        const { status, outcome, tries } = await forward(target, event, key, extra);
        const ms = Math.round(performance.now() - started);
        const body = options.printJson ? JSON.parse(event.data) : undefined;
        if (options.json) say({ event_id: event.id, event: event.name, status, outcome, tries, ms, body });
        else {
          const again = tries > 1 ? ` (${tries} tries)` : "";
          say(`${new Date().toISOString()}  ${event.name.padEnd(21)} ${event.id}  -> ${outcome}${again}  ${ms} ms`);
          if (body !== undefined) say(JSON.stringify(body, null, 2));
        }
      },
      onStatus: (status, detail) =>
        process.stderr.write(
          `-- ${status === "connected" ? "connected to" : "lost"} ${apiFor(options).profile.url}${detail ? ` (${detail})` : ""}\n`,
        ),
    });
  });
}

/** `--signing-key`, else the profile's listen key (made and stored the first time, or with `--new-key`). */
function listenKey(options: ListenOptions): string {
  if (options.signingKey) return options.signingKey;
  const stored = options.newKey ? undefined : storedListenKey(options.profile);
  if (stored) return stored;
  const key = `whsec_${randomBytes(32).toString("base64")}`;
  saveListenKey(options.profile, key);
  return key;
}

function headersOf(given: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const header of given) {
    const at = header.indexOf(":");
    const name = header.slice(0, at).trim();
    if (at < 1 || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      throw new Error(`-H ${header}: expected name:value`);
    }
    if (RESERVED.test(name)) throw new Error(`-H ${name}: listen sets that header itself`);
    headers[name.toLowerCase()] = header.slice(at + 1).trim();
  }
  return headers;
}

/** Posts one event, trying again while the receiver is down or answers 5xx; says how it ended. */
async function forward(
  target: URL,
  event: { id: string; data: string },
  key: string,
  extra: Record<string, string>,
): Promise<{ status: number | null; outcome: string; tries: number }> {
  let tries = 0;
  for (;;) {
    tries++;
    let status: number | null = null;
    let outcome: string;
    try {
      const response = await fetch(target, {
        method: "POST",
        headers: {
          ...extra,
          "content-type": "application/json",
          "user-agent": `carehooks-cli/${version}`,
          // Signed at each try, as a delivery's attempts are.
          ...signatureHeaders({
            eventId: event.id,
            timestamp: Math.floor(Date.now() / 1000),
            body: event.data,
            keys: [key],
          }),
        },
        body: event.data,
        redirect: "manual",
        signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
      });
      await response.arrayBuffer();
      status = response.status;
      outcome = `${response.status}`;
    } catch (error) {
      outcome = `error: ${causeOf(error)}`;
    }
    const retryable = status === null || status >= 500;
    const delay = RETRY_DELAYS_MS[tries - 1];
    if (!retryable || delay === undefined) {
      return { status, outcome: retryable && tries > 1 ? `${outcome}; gave up` : outcome, tries };
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}
