/** `carehooks clients create|list|revoke`: API clients, straight in the database. */
import { Command } from "commander";
import { parseScopes } from "../domain/scopes.js";
import { isoTime } from "../domain/time.js";
import { openMigratedDatabase } from "../runtime.js";
import { createApiClient, listApiClients, revokeApiClient } from "../store/api-clients.js";
import { createBusiness, findBusiness } from "../store/businesses.js";
import type { DialectAdapter } from "../store/dialect/adapter.js";
import { addSettingOptions, configFrom, DATABASE_SETTINGS } from "./database-options.js";

type Options = Record<string, unknown> & { json?: boolean };

async function withDatabase<T>(options: Options, work: (adapter: DialectAdapter) => Promise<T>): Promise<T> {
  const adapter = await openMigratedDatabase(configFrom(options));
  try {
    return await work(adapter);
  } finally {
    await adapter.close();
  }
}

function print(options: Options, json: unknown, text: string): void {
  process.stdout.write(options.json ? `${JSON.stringify(json)}\n` : `${text}\n`);
}

export function clientsCommand(): Command {
  const clients = new Command("clients").description("Create, list and revoke API clients");

  addSettingOptions(
    clients
      .command("create")
      .description("Create an API client (and its business, if new) and print its secret once")
      .requiredOption("--business <name>", "business name or id; created when no business has that name")
      .requiredOption("--scopes <list>", 'comma-separated scopes, or "all"')
      .option("--name <name>", "a label for the client", "default")
      .option("--json", "print JSON for scripts"),
    DATABASE_SETTINGS,
  ).action(async (options: Options & { business: string; scopes: string; name: string }) => {
    const scopes = parseScopes(options.scopes);
    const name = options.business.trim();
    if (name === "" || name.length > 200)
      throw new Error("--business must be a name of 1 to 200 characters, or a business id");
    await withDatabase(options, async ({ db }) => {
      const business = (await findBusiness(db, name)) ?? (await createBusiness(db, name));
      const { client, secret } = await createApiClient(db, { businessId: business.id, name: options.name, scopes });
      print(
        options,
        { business_id: business.id, client_id: client.id, client_secret: secret, scopes },
        [
          `Created client ${client.id} for business "${business.name}" (${business.id})`,
          `  client_id:     ${client.id}`,
          `  client_secret: ${secret}`,
          `  scopes:        ${scopes.join(", ")}`,
          "The secret is shown only now: store it safely.",
        ].join("\n"),
      );
    });
  });

  addSettingOptions(
    clients
      .command("list")
      .description("List API clients")
      .option("--business <name>", "only this business (name or id)")
      .option("--json", "print JSON for scripts"),
    DATABASE_SETTINGS,
  ).action(async (options: Options & { business?: string }) => {
    await withDatabase(options, async ({ db }) => {
      const business = options.business ? await findBusiness(db, options.business) : undefined;
      if (options.business && !business) throw new Error(`no business named ${options.business}`);
      const rows = await listApiClients(db, business?.id);
      const json = rows.map((row) => ({
        client_id: row.id,
        business_id: row.business_id,
        name: row.name,
        scopes: row.scopes,
        created_at: isoTime(row.created_at),
        revoked_at: row.revoked_at === null ? null : isoTime(row.revoked_at),
      }));
      const lines = json.map(
        (row) =>
          `${row.client_id}  ${row.business_id}  ${row.name.padEnd(12)}  ${row.revoked_at ? `revoked ${row.revoked_at}` : "active"}  ${row.scopes.join(",")}`,
      );
      print(options, json, lines.length > 0 ? lines.join("\n") : "no clients");
    });
  });

  addSettingOptions(
    clients
      .command("revoke")
      .description("Revoke a client: its tokens stop working at once")
      .argument("<id>")
      .option("--json", "print JSON for scripts"),
    DATABASE_SETTINGS,
  ).action(async (id: string, options: Options) => {
    await withDatabase(options, async (adapter) => {
      const revoked = await revokeApiClient(adapter, id);
      if (!revoked) throw new Error(`no active client ${id}`);
      print(options, { client_id: id, revoked: true }, `revoked ${id}`);
    });
  });

  return clients;
}
