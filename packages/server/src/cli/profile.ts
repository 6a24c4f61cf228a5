/**
 * Profiles for the integrator commands: where a server is and which client
 * to log in as. Stored by `carehooks login` in
 * `$XDG_CONFIG_HOME/carehooks/profiles.json` (mode 0600); the environment
 * (`CAREHOOKS_URL`, `CAREHOOKS_CLIENT_ID`, `CAREHOOKS_CLIENT_SECRET`) wins.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export interface Profile {
  readonly url: string;
  readonly client_id: string;
  readonly client_secret: string;
}

interface ProfileFile {
  profiles: Record<string, Profile>;
  /** Per profile: the key `listen` signs with, kept so a receiver's configured key works across runs. */
  listen_keys?: Record<string, string>;
}

export function profilesPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || path.join(os.homedir(), ".config");
  return path.join(base, "carehooks", "profiles.json");
}

function readFile(file: string): ProfileFile {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as ProfileFile;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { profiles: {} };
    throw new Error(`cannot read ${file}: ${(error as Error).message}`);
  }
}

export function saveProfile(name: string, profile: Profile, env: NodeJS.ProcessEnv = process.env): string {
  return updateFile(env, (content) => {
    content.profiles[name] = profile;
  });
}

/** The key `listen` signed with last time for this profile, if any. */
export function storedListenKey(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return readFile(profilesPath(env)).listen_keys?.[name];
}

export function saveListenKey(name: string, key: string, env: NodeJS.ProcessEnv = process.env): string {
  return updateFile(env, (content) => {
    content.listen_keys = { ...content.listen_keys, [name]: key };
  });
}

/** Changes the profiles file, which holds secrets: its folder 0700, the file 0600. */
function updateFile(env: NodeJS.ProcessEnv, change: (content: ProfileFile) => void): string {
  const file = profilesPath(env);
  const content = readFile(file);
  change(content);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return file;
}

/** The profile to use: the environment's values over the stored profile's. */
export function loadProfile(name: string, env: NodeJS.ProcessEnv = process.env): Profile {
  const stored = readFile(profilesPath(env)).profiles[name];
  const url = env.CAREHOOKS_URL || stored?.url;
  const clientId = env.CAREHOOKS_CLIENT_ID || stored?.client_id;
  const clientSecret = env.CAREHOOKS_CLIENT_SECRET || stored?.client_secret;
  if (!url || !clientId || !clientSecret) {
    throw new Error(
      `no credentials for profile "${name}": run carehooks login --url URL --client-id ID --client-secret SECRET, or set CAREHOOKS_URL, CAREHOOKS_CLIENT_ID and CAREHOOKS_CLIENT_SECRET`,
    );
  }
  return { url: url.replace(/\/+$/, ""), client_id: clientId, client_secret: clientSecret };
}
