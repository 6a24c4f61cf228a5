/** `carehooks webhooks list|create|update|secret|delete|enable|disable|test`. */
import { Command, Option } from "commander";
import { parseDuration } from "../config/units.js";
import {
  apiFor,
  type EventOptions,
  eventsOf,
  type IntegratorOptions,
  oneEventOf,
  WEBHOOK_API,
  withEventOption,
  withProfile,
} from "./integrator.js";
import { printJson, printRecord, printTable } from "./output.js";

interface Webhook {
  id: string;
  endpoint: string;
  event_names: string[];
  state: string;
  state_reason: string | null;
  signed: boolean;
}

/** Prints a key the server generated: the answer is the only place it is shown without `webhooks secret`. */
function printGenerated(
  options: IntegratorOptions,
  answer: { signing_key?: string; public_key?: string },
  done: string,
): void {
  if (options.json || (answer.signing_key === undefined && answer.public_key === undefined)) {
    printRecord(options, answer, done);
    return;
  }
  if (answer.public_key !== undefined) {
    process.stdout.write(
      `${done}\npublic key (verify ed25519 signatures with it; \`webhooks get\` shows it): ${answer.public_key}\n`,
    );
    return;
  }
  process.stdout.write(
    `${done}\nsigning key (shown once; \`carehooks webhooks secret\` shows it again): ${answer.signing_key}\n`,
  );
}

const schemeOption = () =>
  new Option(
    "--signature-scheme <scheme>",
    "hmac-sha256 (a shared key), or ed25519 (a key pair the server generates; receivers verify with its public key)",
  ).choices(["hmac-sha256", "ed25519"]);

const BASE = `${WEBHOOK_API}/subscriptions`;

export function webhooksCommand(): Command {
  const webhooks = new Command("webhooks").description("Register and manage webhook endpoints");

  withProfile(webhooks.command("list").description("List the business's webhooks")).action(
    async (options: IntegratorOptions) => {
      const api = apiFor(options);
      const items: Webhook[] = [];
      for await (const item of api.pages<Webhook>(BASE)) items.push(item);
      printTable(
        options,
        items,
        [
          ["ID", (w) => w.id],
          ["STATE", (w) => w.state],
          ["EVENTS", (w) => w.event_names.join(",")],
          ["ENDPOINT", (w) => w.endpoint],
          ["SIGNED", (w) => (w.signed ? "yes" : "no")],
        ],
        "no webhooks",
      );
    },
  );

  withProfile(webhooks.command("get").description("Show one webhook and its settings").argument("<id>")).action(
    async (id: string, options: IntegratorOptions) => {
      const { data } = await apiFor(options).request<{ data: Webhook }>("GET", `${BASE}/${id}`);
      printRecord(options, data as unknown as Record<string, unknown>);
    },
  );

  withProfile(
    withSettings(withEventOption(webhooks.command("create"), "the events to send (required)"))
      .description("Register an endpoint; requests are signed with a generated key unless told otherwise")
      .requiredOption("--url <url>", "the endpoint (https)")
      .option("--signing-key <key>", "use this signing key (16–256 printable characters, or whsec_…)")
      .option("--no-signing-key", "send unsigned requests (not recommended)")
      .addOption(schemeOption())
      .addOption(new Option("--generate-signing-key", "the default: a whsec_ key the server generates").hideHelp()),
  ).action(
    async (
      options: IntegratorOptions &
        SettingsOptions &
        EventOptions & { url: string; signingKey?: string | false; signatureScheme?: string },
    ) => {
      const eventNames = eventsOf(options);
      if (!eventNames) throw new Error("give the events to send: --event appointment.created,appointment.updated");
      const body = {
        endpoint: options.url,
        event_names: eventNames,
        // No key given: the server generates one and shows it once (an ed25519 pair: its public key);
        // --no-signing-key: unsigned.
        ...(options.signatureScheme === "ed25519"
          ? { signature_scheme: "ed25519" }
          : typeof options.signingKey === "string"
            ? { signing_key: options.signingKey }
            : options.signingKey === false
              ? {}
              : { generate_signing_key: true }),
        ...settingsOf(options),
      };
      const created = await apiFor(options).request<{ id: string; signing_key?: string }>("POST", BASE, body);
      printGenerated(options, created, `created ${created.id}`);
    },
  );

  withProfile(
    withSettings(withEventOption(webhooks.command("update"), "the new events to send"))
      .description("Change a webhook's endpoint, events, signing key or delivery settings")
      .argument("<id>")
      .option("--url <url>", "new endpoint")
      .option("--signing-key <key>", "new signing key (the old one keeps signing for CAREHOOKS_KEY_OVERLAP)")
      .option("--generate-signing-key", "rotate to a whsec_ key the server generates, printed once")
      .option("--expire-previous-key", "stop signing with the replaced key now")
      .addOption(schemeOption()),
  ).action(
    async (
      id: string,
      options: IntegratorOptions &
        SettingsOptions &
        EventOptions & {
          url?: string;
          signingKey?: string;
          generateSigningKey?: boolean;
          expirePreviousKey?: boolean;
          signatureScheme?: string;
        },
    ) => {
      const body = {
        ...(options.url ? { endpoint: options.url } : {}),
        ...(eventsOf(options) ? { event_names: eventsOf(options) } : {}),
        ...(options.signingKey ? { signing_key: options.signingKey } : {}),
        ...(options.generateSigningKey ? { generate_signing_key: true } : {}),
        ...(options.expirePreviousKey ? { expire_previous_key: true } : {}),
        ...(options.signatureScheme ? { signature_scheme: options.signatureScheme } : {}),
        ...settingsOf(options),
      };
      const answer = await apiFor(options).request<{ signing_key?: string; public_key?: string }>(
        "PATCH",
        `${BASE}/${id}`,
        body,
      );
      printGenerated(options, answer, `updated ${id}`);
    },
  );

  withProfile(
    webhooks
      .command("secret")
      .description("Show a webhook's signing key (needs the webhooks:write scope)")
      .argument("<id>"),
  ).action(async (id: string, options: IntegratorOptions) => {
    const { data } = await apiFor(options).request<{
      data: { signing_key: string | null; previous_signing_key: string | null; previous_key_expires_at: string | null };
    }>("GET", `${BASE}/${id}/secret`);
    if (options.json) {
      printJson(data);
      return;
    }
    process.stdout.write(`${data.signing_key ?? "(unsigned)"}\n`);
    if (data.previous_signing_key) {
      process.stdout.write(
        `previous key, signing until ${data.previous_key_expires_at}: ${data.previous_signing_key}\n`,
      );
    }
  });

  withProfile(
    webhooks.command("delete").description("Delete a webhook; its queued deliveries stop").argument("<id>"),
  ).action(async (id: string, options: IntegratorOptions) => {
    const answer = await apiFor(options).request<Record<string, unknown>>("DELETE", `${BASE}/${id}`);
    printRecord(options, answer, `deleted ${id}`);
  });

  for (const action of ["enable", "disable"] as const) {
    withProfile(
      webhooks
        .command(action)
        .description(
          action === "enable" ? "Re-enable a webhook (resets its failure streak)" : "Stop deliveries to a webhook",
        )
        .argument("<id>"),
    ).action(async (id: string, options: IntegratorOptions) => {
      const { data } = await apiFor(options).request<{ data: Webhook }>("POST", `${BASE}/${id}/${action}`);
      if (options.json) printJson(data);
      else process.stdout.write(`${id} is ${data.state}${data.state_reason ? ` (${data.state_reason})` : ""}\n`);
    });
  }

  withProfile(
    withEventOption(webhooks.command("test"), "the event to send (default: the webhook's first)")
      .description("Send a sample event to one webhook")
      .argument("<id>"),
  ).action(async (id: string, options: IntegratorOptions & EventOptions) => {
    const event = oneEventOf(options);
    const { data } = await apiFor(options).request<{ data: { id: string; event_name: string } }>(
      "POST",
      `${BASE}/${id}/test`,
      event ? { event_name: event } : {},
    );
    printRecord(options, data, `queued ${data.event_name} as delivery ${data.id}`);
  });

  return webhooks;
}

interface SettingsOptions {
  ordering?: string;
  maxInFlight?: string;
  rateLimit?: string;
  timeout?: string;
  retrySchedule?: string;
  filter?: string;
  header?: string[];
  clearHeaders?: boolean;
}

/** The per-webhook delivery settings, the same on create and update. */
function withSettings(command: Command): Command {
  return command
    .option("--ordering <ordering>", "none, or per_resource: a resource's events one at a time, in order")
    .option(
      "--max-in-flight <n>",
      "requests open to the webhook at once (at most the server's cap); default: the server's",
    )
    .option("--rate-limit <n>", "requests per second to the webhook; none: no limit")
    .option(
      "--timeout <duration>",
      "how long an attempt may take (5s, 2500ms; at most the server's); default: the server's",
    )
    .option(
      "--retry-schedule <delays>",
      "delays after each failed attempt (10s,1m,1h); none: never retry; default: the server's",
    )
    .option("--filter <json>", `only events matching it, e.g. '{"data.clinic_id":"clinic-7"}'; none: every event`)
    .option("--header <name:value>", "a header sent with every attempt (repeat for more; replaces the set)", collect)
    .option("--clear-headers", "send no custom headers");
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Whole seconds of a duration (`5s`, `2500ms` rounds up); a bare number is seconds. */
function seconds(text: string): number {
  return /^\d+$/.test(text) ? Number(text) : Math.ceil(parseDuration(text) / 1000);
}

function headersOf(options: SettingsOptions): Record<string, unknown> {
  if (options.clearHeaders) {
    if (options.header) throw new Error("give --header or --clear-headers, not both");
    return { headers: null };
  }
  if (!options.header) return {};
  const entries = options.header.map((given) => {
    const colon = given.indexOf(":");
    if (colon <= 0) throw new Error(`--header "${given}" must be name:value`);
    return [given.slice(0, colon).trim(), given.slice(colon + 1).trim()] as const;
  });
  // fromEntries defines own properties: a header named __proto__ reaches the server, which refuses it by name.
  return { headers: Object.fromEntries(entries) };
}

/** `--retry-schedule`: delays in seconds; `none` never retries, `default` is the server's schedule. */
function scheduleOf(text: string): number[] | null {
  if (text === "default") return null;
  if (text === "none") return [];
  return text.split(",").map((delay) => seconds(delay.trim()));
}

function filterOf(text: string): unknown {
  if (text === "none") return null;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`--filter must be JSON (${(error as Error).message}), or none`);
  }
}

/** The settings given, as the API takes them; `default` and `none` clear a number. */
function settingsOf(options: SettingsOptions): Record<string, unknown> {
  const count = (value: string) => (value === "default" || value === "none" ? null : Number(value));
  return {
    ...(options.ordering !== undefined ? { ordering: options.ordering } : {}),
    ...(options.maxInFlight !== undefined ? { max_in_flight: count(options.maxInFlight) } : {}),
    ...(options.rateLimit !== undefined ? { rate_limit: count(options.rateLimit) } : {}),
    ...(options.timeout !== undefined
      ? { timeout: options.timeout === "default" ? null : seconds(options.timeout) }
      : {}),
    ...(options.retrySchedule !== undefined ? { retry_schedule: scheduleOf(options.retrySchedule) } : {}),
    ...(options.filter !== undefined ? { filter: filterOf(options.filter) } : {}),
    ...headersOf(options),
  };
}
