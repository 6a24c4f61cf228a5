import { Command } from "commander";
import { migrateDatabase, openDatabase } from "../store/open.js";
import { addSettingOptions, configFrom, DATABASE_SETTINGS } from "./database-options.js";

export function migrateCommand(): Command {
  const command = new Command("migrate").description(
    "Apply pending database migrations (serve also does this at start)",
  );
  addSettingOptions(command, DATABASE_SETTINGS);
  return command.action(async (options: Record<string, unknown>) => {
    const config = configFrom(options);
    const adapter = openDatabase(config.databaseUrl, { sqliteSynchronous: config.sqliteSynchronous, poolSize: 2 });
    try {
      const applied = await migrateDatabase(adapter);
      process.stdout.write(
        applied.length === 0 ? "database is up to date\n" : `applied migrations ${applied.join(", ")}\n`,
      );
    } finally {
      await adapter.close();
    }
  });
}
