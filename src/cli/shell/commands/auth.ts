/**
 * `login` (password + TOTP code, prompted when missing, for a bearer token
 * saved with the URL in shell.json), `logout` (revokes the token) and `whoami`.
 */
import { ApiClient, ApiRequestError, DEFAULT_TIMEOUT_MS } from "../api_client.ts";
import { httpClientFor, parseFingerprint } from "../trust.ts";
import type { Session } from "../api_types.ts";
import { loadLogin, loginPath, saveLogin } from "../config.ts";
import { clientFor, connection, emit, type ShellContext } from "../context.ts";
import { formatTime } from "../format.ts";
import { UsageError } from "../io.ts";
import type { Root } from "../program.ts";
import { intArg } from "./args.ts";

/** A value from the command line, else the environment, else a prompt. */
async function ask(
  ctx: ShellContext,
  given: string | undefined,
  what: string,
  secret = false,
): Promise<string> {
  if (given !== undefined && given !== "") return given;
  const p = ctx.io.prompter;
  if (p === null) throw new UsageError(`Cannot sign in: ${what} is required (no terminal to ask)`);
  const answer = secret ? await p.password(`${what}:`) : await p.input(`${what}:`);
  if (answer === "") throw new UsageError(`Cannot sign in: ${what} is required`);
  return answer;
}

interface LoginOptions {
  password?: string;
  code?: string;
  ttlDays?: number;
  printToken?: true;
  url?: string;
  token?: string;
  json?: true;
  fingerprint?: string;
  ca?: string;
}

async function login(ctx: ShellContext, name: string | undefined, o: LoginOptions) {
  const { url, caCert, fingerprint } = await connection(ctx, { ...o, token: undefined });
  const user = await ask(ctx, name, "User");
  const password = await ask(
    ctx,
    o.password ?? ctx.io.env.get("KNOCKGATE_PASSWORD"),
    "Password",
    true,
  );
  const code = await ask(ctx, o.code, "TOTP code");
  const api = new ApiClient(url, null, DEFAULT_TIMEOUT_MS, ctx.cancel, httpClientFor(caCert));
  const { session, token } = await api.createToken(user, password, code, o.ttlDays);
  const path = loginPath(ctx.io.env);
  const pin = fingerprint === undefined ? {} : { fingerprint: parseFingerprint(fingerprint) };
  await saveLogin(path, {
    url,
    token: token.token,
    user,
    expiresAt: token.expiresAt,
    ...pin,
    ...(caCert === undefined ? {} : { caCert }),
  });
  ctx.session = { url, token: token.token, caCert };
  if (o.printToken) return ctx.io.out(token.token);
  const view = {
    url,
    user: session.user.name,
    role: session.role,
    tokenId: token.id,
    expiresAt: token.expiresAt,
    saved: path,
  };
  emit(
    ctx,
    o,
    view,
    () =>
      `Signed in to ${url} as ${session.user.name} (${session.role}); token saved in ${path}, ` +
      `valid until ${formatTime(token.expiresAt)}`,
  );
}

async function logout(
  ctx: ShellContext,
  o: { url?: string; token?: string; json?: true; fingerprint?: string; ca?: string },
) {
  const { url, token, caCert } = await connection(ctx, o);
  if (token === undefined) return ctx.io.out("Not signed in.");
  let note = "token revoked";
  try {
    const creds = { kind: "token" as const, token };
    await new ApiClient(url, creds, DEFAULT_TIMEOUT_MS, ctx.cancel, httpClientFor(caCert))
      .post("/auth/logout");
  } catch (e) {
    // A token the appliance no longer knows is as good as revoked.
    if (!(e instanceof ApiRequestError && e.status === 401)) throw e;
    note = "token was no longer valid";
  }
  const path = loginPath(ctx.io.env);
  const saved = await loadLogin(path);
  // The trusted certificate stays: signing in again needs no new pin.
  if (saved?.token === token) {
    await saveLogin(path, { url: saved.url, fingerprint: saved.fingerprint, caCert: saved.caCert });
  }
  ctx.session = { url, caCert };
  emit(ctx, o, { url, revoked: true }, () => `Signed out of ${url}: ${note}.`);
}

/** Registers `login`, `logout` and `whoami`. */
export function registerAuth(root: Root, ctx: ShellContext): void {
  root.command("login [user]")
    .description("sign in (password and TOTP code, asked when missing) and save a token")
    .option("-p, --password <password>", "password (else $KNOCKGATE_PASSWORD, else asked)")
    .option("-c, --code <code>", "TOTP code from the authenticator (else asked)")
    .option("--ttl-days <days>", "token lifetime in days (default 30)", intArg("days", 1, 365))
    .option("--print-token", "print the token (for scripts) instead of the summary")
    .action((name, _o, cmd) => login(ctx, name, cmd.optsWithGlobals()));
  root.command("logout").description("revoke the token and forget it")
    .action((_o, cmd) => logout(ctx, cmd.optsWithGlobals()));
  root.command("whoami").description("show who the token belongs to")
    .action(async (_o, cmd) => {
      const o = cmd.optsWithGlobals();
      const api = await clientFor(ctx, o);
      const me = await api.get<Session>("/auth/me");
      emit(
        ctx,
        o,
        me,
        () =>
          `${me.user.name} (${me.role}) at ${api.baseUrl}, ${me.kind} valid until ${
            formatTime(me.expiresAt)
          }`,
      );
    });
}
