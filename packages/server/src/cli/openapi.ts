/** `carehooks openapi`: print the OpenAPI document (how docs/openapi.json is made). */
import { Command } from "commander";
import { loadConfig } from "../config/load.js";
import { generateMasterKey } from "../domain/key-box.js";
import { buildApp } from "../http/app.js";
import { createContext, openMigratedDatabase } from "../runtime.js";

export async function openApiDocument(): Promise<unknown> {
  // The document depends only on the routes: build them over a throwaway in-memory database.
  const config = loadConfig({
    CAREHOOKS_DATABASE_URL: "sqlite::memory:",
    CAREHOOKS_MASTER_KEY: generateMasterKey(),
    CAREHOOKS_JWT_SECRET: generateMasterKey(),
  });
  const adapter = await openMigratedDatabase(config);
  try {
    const app = await buildApp(await createContext(config, adapter));
    const document = app.swagger();
    await app.close();
    return document;
  } finally {
    await adapter.close();
  }
}

export function openapiCommand(): Command {
  return new Command("openapi").description("Print the OpenAPI 3.1 document").action(async () => {
    process.stdout.write(`${JSON.stringify(await openApiDocument(), null, 2)}\n`);
  });
}
