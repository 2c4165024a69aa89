/**
 * What every command shares: the io, the session's URL and token (set by
 * startup options or `login`), and how a command finds its appliance:
 * `--url`, the session, `$KNOCKGATE_URL`, the saved login, in that order;
 * the token likewise (`--token`, the session, `$KNOCKGATE_TOKEN`, the saved
 * token when it belongs to the same URL); the certificate trusted likewise
 * (`--ca FILE` or `--fingerprint`, the session, the saved login's).
 */
import { ApiClient, DEFAULT_TIMEOUT_MS, normalizeUrl } from "./api_client.ts";
import { loadLogin, loginPath } from "./config.ts";
import { type ShellIo, UsageError } from "./io.ts";
import { httpClientFor, pinnedCertificate, readCaFile } from "./trust.ts";

/** The options every command accepts. */
export interface GlobalOptions {
  url?: string;
  token?: string;
  json?: boolean;
  /** SHA-256 of the appliance's certificate, pinned. */
  fingerprint?: string;
  /** A PEM file of the CA (or the certificate) to trust. */
  ca?: string;
}

/** State shared by the commands of one shell run. */
export interface ShellContext {
  io: ShellIo;
  /** True in the interactive shell. */
  interactive: boolean;
  /** URL and token chosen for this run (by startup options or `login`). */
  session: { url?: string; token?: string; caCert?: string };
  /** Set by `exit`/`quit`: the interactive loop ends. */
  quit: boolean;
  /** Aborts the running command's requests (Ctrl-C in the interactive shell). */
  cancel?: AbortSignal;
}

/** A fresh context over `io`. */
export function newContext(io: ShellIo, interactive = false): ShellContext {
  return { io, interactive, session: {}, quit: false };
}

/** The saved login, or null when there is none or no config dir is known. */
async function savedLogin(ctx: ShellContext) {
  try {
    return await loadLogin(loginPath(ctx.io.env));
  } catch {
    return null;
  }
}

/** The appliance URL and token a command uses. */
export async function connection(
  ctx: ShellContext,
  opts: GlobalOptions,
): Promise<{ url: string; token?: string; caCert?: string; fingerprint?: string }> {
  const env = ctx.io.env;
  const saved = await savedLogin(ctx);
  const raw = opts.url ?? ctx.session.url ?? env.get("KNOCKGATE_URL") ?? saved?.url;
  if (raw === undefined || raw === "") {
    throw new UsageError(
      "No appliance URL: pass --url https://ADDRESS:8443, set KNOCKGATE_URL, or run login --url ...",
    );
  }
  const url = normalizeUrl(raw);
  const sessionToken = ctx.session.url === undefined || normalizeUrl(ctx.session.url) === url
    ? ctx.session.token
    : undefined;
  const savedToken = saved?.url !== undefined && normalizeUrl(saved.url) === url
    ? saved.token
    : undefined;
  const token = opts.token ?? sessionToken ?? (env.get("KNOCKGATE_TOKEN") || undefined) ??
    savedToken;
  const sameAsSession = ctx.session.url !== undefined && normalizeUrl(ctx.session.url) === url;
  const sameAsSaved = saved?.url !== undefined && normalizeUrl(saved.url) === url;
  if (opts.ca !== undefined && opts.fingerprint !== undefined) {
    throw new UsageError("Pass --ca or --fingerprint, not both");
  }
  if (opts.ca !== undefined) return { url, token, caCert: await readCaFile(opts.ca) };
  if (opts.fingerprint !== undefined) {
    const caCert = url.startsWith("https:")
      ? await pinnedCertificate(url, opts.fingerprint)
      : undefined;
    return { url, token, caCert, fingerprint: opts.fingerprint };
  }
  const caCert = (sameAsSession ? ctx.session.caCert : undefined) ??
    (sameAsSaved ? saved?.caCert : undefined);
  return { url, token, caCert };
}

/** A client for the command's appliance, with its token when there is one. */
export async function clientFor(ctx: ShellContext, opts: GlobalOptions): Promise<ApiClient> {
  const { url, token, caCert } = await connection(ctx, opts);
  const creds = token === undefined ? null : { kind: "token" as const, token };
  return new ApiClient(url, creds, DEFAULT_TIMEOUT_MS, ctx.cancel, httpClientFor(caCert));
}

/** Prints `value` as JSON with `--json`, else the text `render` makes. */
export function emit(
  ctx: ShellContext,
  opts: GlobalOptions,
  value: unknown,
  render: () => string,
): void {
  ctx.io.out(opts.json ? JSON.stringify(value, null, 2) : render());
}
