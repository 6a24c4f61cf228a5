/** A fresh database per test file, on each dialect the run can reach. */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { inject } from "vitest";

export type DialectName = "sqlite" | "postgres";

export interface TestDatabase {
  readonly dialect: DialectName;
  readonly url: string;
  readonly dataDir: string;
  drop(): Promise<void>;
}

/** The dialects to run shared cases on: SQLite always, PostgreSQL when reachable (always in CI). */
export function dialects(): DialectName[] {
  return inject("postgresUrl") ? ["sqlite", "postgres"] : ["sqlite"];
}

export function tempDir(prefix = "carehooks-test-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function createTestDatabase(dialect: DialectName): Promise<TestDatabase> {
  const dataDir = tempDir();
  if (dialect === "sqlite") {
    return {
      dialect,
      url: `sqlite:${path.join(dataDir, "carehooks.db")}`,
      dataDir,
      drop: async () => fs.rmSync(dataDir, { recursive: true, force: true }),
    };
  }
  const base = inject("postgresUrl");
  const schema = `t_${randomBytes(6).toString("hex")}`;
  const url = new URL(base);
  url.searchParams.set("schema", schema);
  return {
    dialect,
    url: url.toString(),
    dataDir,
    async drop() {
      const client = new pg.Client({ connectionString: base });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
