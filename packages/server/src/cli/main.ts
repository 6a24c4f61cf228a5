/** The `carehooks` binary: one subcommand per file in this folder. */
import { ConfigError } from "../config/load.js";
import { buildProgram } from "./program.js";

const program = buildProgram();

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`carehooks: configuration error: ${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`carehooks: ${(error as Error).message}\n`);
  process.exit(1);
}
