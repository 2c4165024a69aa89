/**
 * Saved knock profiles of the knock client: `profiles.json` in the user's
 * config dir (`$XDG_CONFIG_HOME/knockgate/` or `~/.config/knockgate/`),
 * readable by its owner only (mode 0600) since it holds TOTP secrets.
 */

import { base32Decode } from "../knock/base32.ts";

/** Transports the client can knock with. */
export type ClientTransport = "tcp" | "udp";

/** Address families the client can knock over (see `--family` in knock.ts). */
export type ClientFamily = "auto" | "4" | "6" | "both";

/** What a saved profile holds. */
export interface SavedProfile {
  host: string;
  firstPort: number;
  /** Base32 TOTP secret. */
  secret: string;
  length: number;
  transport: ClientTransport;
  /** Absent in a profile saved before families or with `auto`: `auto`. */
  family?: ClientFamily;
}

/** Reads environment variables (Deno.env in production, a map in tests). */
export interface Env {
  get(name: string): string | undefined;
}

/** The profiles file for this environment. Throws when neither variable is set. */
export function profilesPath(env: Env): string {
  const xdg = env.get("XDG_CONFIG_HOME");
  const home = env.get("HOME");
  const dir = xdg ? xdg : home ? `${home}/.config` : null;
  if (dir === null) {
    throw new Error("Cannot locate knock profiles: neither XDG_CONFIG_HOME nor HOME is set");
  }
  return `${dir}/knockgate/profiles.json`;
}

/** Every saved profile by name; empty when the file does not exist. */
export async function loadProfiles(path: string): Promise<Record<string, SavedProfile>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return {};
    throw e;
  }
  const doc = JSON.parse(text) as { profiles?: Record<string, SavedProfile> };
  return doc.profiles ?? {};
}

/** The profile `name`; throws if absent or malformed. */
export async function loadProfile(path: string, name: string): Promise<SavedProfile> {
  const p = (await loadProfiles(path))[name];
  if (p === undefined) throw new Error(`Cannot load profile "${name}": not found in ${path}`);
  checkProfile(name, p);
  return p;
}

/** Adds or replaces profile `name`, writing the file atomically with mode 0600. */
export async function saveProfile(
  path: string,
  name: string,
  profile: SavedProfile,
): Promise<void> {
  checkProfile(name, profile);
  const profiles = await loadProfiles(path);
  profiles[name] = profile;
  const dir = path.slice(0, path.lastIndexOf("/"));
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.${Deno.pid}.tmp`;
  // Created 0600 before any secret is written, then renamed over the old file.
  await Deno.writeTextFile(tmp, JSON.stringify({ profiles }, null, 2) + "\n", { mode: 0o600 });
  await Deno.chmod(tmp, 0o600);
  await Deno.rename(tmp, path);
}

function checkProfile(name: string, p: SavedProfile): void {
  const bad = (why: string) => new Error(`Cannot use profile "${name}": ${why}`);
  if (typeof p.host !== "string" || p.host === "") throw bad("host is missing");
  if (!Number.isInteger(p.firstPort) || p.firstPort < 1 || p.firstPort > 65535) {
    throw bad(`first port ${p.firstPort} is out of range`);
  }
  if (!Number.isInteger(p.length) || p.length < 1 || p.length > 8) {
    throw bad(`length ${p.length} is out of range 1..8`);
  }
  if (p.transport !== "tcp" && p.transport !== "udp") {
    throw bad(`transport "${p.transport}" is unknown`);
  }
  if (p.family !== undefined && !["auto", "4", "6", "both"].includes(p.family)) {
    throw bad(`family "${p.family}" is unknown (auto, 4, 6 or both)`);
  }
  base32Decode(p.secret);
}
