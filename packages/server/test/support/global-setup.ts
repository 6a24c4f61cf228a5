/**
 * Decides once per run whether the PostgreSQL cases run. In CI (CI=true) an
 * unreachable PostgreSQL fails the run; elsewhere those cases skip, loudly.
 */
import pg from "pg";
import type { TestProject } from "vitest/node";

export const POSTGRES_URL = process.env.CAREHOOKS_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

export default async function setup(project: TestProject): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 });
  let reachable = true;
  try {
    await client.connect();
    await client.query("SELECT 1");
  } catch (error) {
    reachable = false;
    if (process.env.CI === "true") {
      throw new Error(`PostgreSQL is unreachable at ${POSTGRES_URL} and CI=true: ${(error as Error).message}`);
    }
    process.stderr.write(
      `\n${"!".repeat(78)}\n!! PostgreSQL unreachable at ${POSTGRES_URL}: its test cases are SKIPPED.\n!! (${(error as Error).message})\n${"!".repeat(78)}\n\n`,
    );
  } finally {
    await client.end().catch(() => {});
  }
  project.provide("postgresUrl", reachable ? POSTGRES_URL : "");
}

declare module "vitest" {
  export interface ProvidedContext {
    postgresUrl: string;
  }
}
