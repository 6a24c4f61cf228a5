import type { Kysely } from "kysely";
import type { DialectAdapter, DialectOptions } from "./dialect/adapter.js";
import { openPostgres } from "./dialect/postgres.js";
import { openSqlite } from "./dialect/sqlite.js";
import { loadMigrations } from "./migrations.js";
import type { Database } from "./schema.js";

export type Db = Kysely<Database>;

export function dialectOf(url: string): DialectAdapter["name"] {
  if (url.startsWith("sqlite:")) return "sqlite";
  if (/^postgres(ql)?:\/\//.test(url)) return "postgres";
  throw new Error(`unsupported database URL ${url.split(":")[0]}:…`);
}

/** Opens the database a `CAREHOOKS_DATABASE_URL` names; nothing is migrated yet. */
export function openDatabase(url: string, options: DialectOptions): DialectAdapter {
  return dialectOf(url) === "sqlite" ? openSqlite(url.slice("sqlite:".length), options) : openPostgres(url, options);
}

export async function migrateDatabase(adapter: DialectAdapter): Promise<number[]> {
  return adapter.migrate(loadMigrations(adapter.name));
}
