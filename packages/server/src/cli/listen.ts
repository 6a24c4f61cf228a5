/**
 * `carehooks listen --forward-to http://localhost:PORT/PATH`: develop a
 * receiver on localhost with nothing exposed. The CLI follows the server's
 * event stream and forwards each event to the local URL as a real webhook
 * request, signed with a per-session key it prints at start.
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
import { followStream } from "./stream-client.js";

const FORWARD_TIMEOUT_MS = 10_000;

export function listenCommand(): Command {
  return withProfile(
    withEventOption(new Command("listen"), "only these event names")
      .description("Forward the server's events to a local URL, signed with a session key")
      .requiredOption("--forward-to <url>", "local receiver, e.g. http://localhost:3000/webhooks")
      .option("--signing-key <key>", "use this key instead of a fresh session key"),
  ).action(async (options: IntegratorOptions & EventOptions & { forwardTo: string; signingKey?: string }) => {
    const target = new URL(options.forwardTo);
    if (target.protocol !== "http:" && target.protocol !== "https:")
      throw new Error("--forward-to must be an http(s) URL");
    const key = options.signingKey ?? `whsec_${randomBytes(32).toString("base64")}`;
    const say = (line: unknown) => process.stdout.write(`${typeof line === "string" ? line : JSON.stringify(line)}\n`);
    if (options.json) say({ signing_key: key, forward_to: target.href });
    else {
      say(`Forwarding events to ${target.href}`);
      say(`Session signing key: ${key}`);
      say("Verify with it as you would with your webhook's key. Ctrl-C to stop.");
    }
    await followStream(apiFor(options), {
      events: eventsOf(options),
      onEvent: async (event) => {
        const started = performance.now();
        const headers = {
          "content-type": "application/json",
          "user-agent": `carehooks-cli/${version}`,
          ...signatureHeaders({
            eventId: event.id,
            timestamp: Math.floor(Date.now() / 1000),
            body: event.data,
            keys: [key],
          }),
        };
        let outcome: string;
        let status: number | null = null;
        try {
          const response = await fetch(target, {
            method: "POST",
            headers,
            body: event.data,
            redirect: "manual",
            signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
          });
          await response.arrayBuffer();
          status = response.status;
          outcome = `${response.status}`;
        } catch (error) {
          outcome = `error: ${(error as Error).message}`;
        }
        const ms = Math.round(performance.now() - started);
        if (options.json) say({ event_id: event.id, event: event.name, status, outcome, ms });
        else say(`${new Date().toISOString()}  ${event.name.padEnd(21)} ${event.id}  -> ${outcome}  ${ms} ms`);
      },
      onStatus: (status, detail) =>
        process.stderr.write(
          `-- ${status === "connected" ? "connected to" : "lost"} ${apiFor(options).profile.url}${detail ? ` (${detail})` : ""}\n`,
        ),
    });
  });
}
