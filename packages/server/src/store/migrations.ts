/**
 * Loads the ordered SQL migrations of one dialect from `migrations/<dialect>/NNNN_name.sql`.
 *
 * Hand-written rather than Kysely's `Migrator`: the migrations are plain SQL
 * files per dialect (triggers, partial indexes, PL/pgSQL), which Migrator
 * would only wrap in TypeScript; each dialect applies them its own way
 * (PostgreSQL under an advisory lock, SQLite under `serve`'s file lock); and
 * databases already record them in `schema_migration`, which Migrator's own
 * tables would not read.
 */
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import type { Migration } from "./dialect/adapter.js";

// The same relative path from src/store and dist/store.
const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations/", import.meta.url));

export function loadMigrations(dialect: "sqlite" | "postgres"): Migration[] {
  const dir = `${MIGRATIONS_DIR}${dialect}`;
  return fs
    .readdirSync(dir)
    .filter((file) => file.endsWith(".sql"))
    .sort()
    .map((file) => {
      const match = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
      if (!match) throw new Error(`migration file ${file} is not named NNNN_name.sql`);
      return { version: Number(match[1]), name: match[2] as string, sql: fs.readFileSync(`${dir}/${file}`, "utf8") };
    });
}
