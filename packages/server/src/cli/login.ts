import { Command } from "commander";
import { Api } from "./api.js";
import { saveProfile } from "./profile.js";

export function loginCommand(): Command {
  return new Command("login")
    .description("Check client credentials against a server and store them as a profile")
    .option("--url <url>", "server base URL (or CAREHOOKS_URL)")
    .option("--client-id <id>", "API client id (or CAREHOOKS_CLIENT_ID)")
    .option("--client-secret <secret>", "API client secret (or CAREHOOKS_CLIENT_SECRET)")
    .option("--profile <name>", "profile name", "default")
    .option("--json", "print JSON for scripts")
    .action(
      async (options: { url?: string; clientId?: string; clientSecret?: string; profile: string; json?: boolean }) => {
        const url = (options.url ?? process.env.CAREHOOKS_URL)?.replace(/\/+$/, "");
        const clientId = options.clientId ?? process.env.CAREHOOKS_CLIENT_ID;
        const clientSecret = options.clientSecret ?? process.env.CAREHOOKS_CLIENT_SECRET;
        if (!url || !clientId || !clientSecret)
          throw new Error("give --url, --client-id and --client-secret (or the CAREHOOKS_ environment variables)");
        const profile = { url, client_id: clientId, client_secret: clientSecret };
        await new Api(profile).token();
        const file = saveProfile(options.profile, profile);
        if (options.json)
          process.stdout.write(`${JSON.stringify({ profile: options.profile, url, client_id: clientId, file })}\n`);
        else
          process.stdout.write(`logged in to ${url} as ${clientId}; profile "${options.profile}" saved in ${file}\n`);
      },
    );
}
