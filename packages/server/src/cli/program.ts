/** The `carehooks` command tree, without running it (cli/main.ts runs it; tests read it). */
import { Command } from "commander";
import { version } from "../version.js";
import { clientsCommand } from "./clients.js";
import { deliveriesCommand } from "./deliveries.js";
import { eventsCommand } from "./events.js";
import { healthcheckCommand } from "./healthcheck.js";
import { listenCommand } from "./listen.js";
import { loginCommand } from "./login.js";
import { migrateCommand } from "./migrate.js";
import { openapiCommand } from "./openapi.js";
import { serveCommand } from "./serve.js";
import { triggerCommand } from "./trigger.js";
import { webhooksCommand } from "./webhooks.js";

export function buildProgram(): Command {
  const program = new Command("carehooks")
    .description("Signed, at-least-once webhooks for a clinic business API")
    .version(version)
    .showHelpAfterError();

  program.addCommand(serveCommand());
  program.addCommand(migrateCommand());
  program.addCommand(clientsCommand());
  program.addCommand(healthcheckCommand());
  program.addCommand(openapiCommand());
  program.addCommand(loginCommand());
  program.addCommand(webhooksCommand());
  program.addCommand(deliveriesCommand());
  program.addCommand(eventsCommand());
  program.addCommand(listenCommand());
  program.addCommand(triggerCommand());
  return program;
}
