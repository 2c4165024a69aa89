/**
 * The shell's files in the user's config dir (`$XDG_CONFIG_HOME/knockgate/`
 * or `~/.config/knockgate/`, as the knock client's profiles): `shell.json`
 * with the appliance URL and bearer token (mode 0600), and `shell_history`.
 */
import { dirname } from "node:path";
import { type Env, profilesPath } from "../profiles.ts";

/** What `login` saves. */
export interface SavedLogin {
  /** The appliance's base URL. */
  url: string;
  /** The bearer token; absent after `logout`. */
  token?: string;
  /** Who signed in. */
  user?: string;
  /** When the token expires, ms since the epoch. */
  expiresAt?: number;
  /** The pinned certificate's SHA-256 fingerprint (`login --fingerprint`). */
  fingerprint?: string;
  /** The PEM the shell trusts for `url`: the pinned certificate, or the `--ca` file's. */
  caCert?: string;
}

/** The knockgate config dir for this environment; throws when neither variable is set. */
export function configDir(env: Env): string {
  return dirname(profilesPath(env));
}

/** Path of `shell.json`. */
export function loginPath(env: Env): string {
  return `${configDir(env)}/shell.json`;
}

/** Path of the interactive history. */
export function historyPath(env: Env): string {
  return `${configDir(env)}/shell_history`;
}

/** The saved login, or null when there is none (or the file is unreadable as JSON). */
export async function loadLogin(path: string): Promise<SavedLogin | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  try {
    const doc = JSON.parse(text) as Partial<SavedLogin>;
    return typeof doc.url === "string" ? doc as SavedLogin : null;
  } catch {
    return null;
  }
}

/** Writes `text` to `path` atomically, readable by its owner only (dir 0700, file 0600). */
export async function writePrivate(path: string, text: string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${Deno.pid}.tmp`;
  // Created 0600 before the token is written, then renamed over the old file.
  await Deno.writeTextFile(tmp, text, { mode: 0o600 });
  await Deno.chmod(tmp, 0o600);
  await Deno.rename(tmp, path);
}

/** Saves `login` to `path` (mode 0600). */
export async function saveLogin(path: string, login: SavedLogin): Promise<void> {
  await writePrivate(path, JSON.stringify(login, null, 2) + "\n");
}
