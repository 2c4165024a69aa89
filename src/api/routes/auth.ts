/**
 * Sign-in and tokens. `POST /auth/login` takes password and TOTP code (the
 * user must have enrolled), throttles failures per (user, client address)
 * and per client address (never per user alone: see `SignInThrottle`),
 * refuses a code already used, even after a restart (RFC 6238 §5.2: the used
 * step is kept in the store), and sets an HttpOnly,
 * SameSite=Strict session cookie; the answer carries the CSRF token the
 * client sends as `X-CSRF-Token`. Bearer tokens for scripts are created from
 * a cookie session only, so a token cannot mint further tokens.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { deleteCookie, setCookie } from "hono/cookie";
import { TOTP_PERIOD_S, verifyTotp } from "../../knock/totp.ts";
import { escapeControl } from "../../log/escape.ts";
import { toPublicUser, type UserRecord } from "../../store/users.ts";
import { ANY_ROLE, authOf, clientIp, requireRole, SESSION_COOKIE } from "../auth.ts";
import { ApiError, notFound } from "../errors.ts";
import { errors, jsonBody, jsonResponse, newRouter, SIGNED_IN } from "../_router.ts";
import {
  CreatedTokenSchema,
  LoginSchema,
  NewTokenSchema,
  SessionSchema,
  TokenInfoSchema,
} from "../schemas.ts";
import { type SignInFailureReason, SignInFailures } from "../sign_in_failures.ts";
import { SignInThrottle } from "../throttle.ts";
import type { ApiDeps, AppEnv } from "../types.ts";

/** Lifetime of a browser session. */
export const SESSION_TTL_MS = 12 * 3600_000;
/** Default lifetime of a bearer token. */
export const TOKEN_TTL_DAYS = 30;

const login = createRoute({
  operationId: "signIn",
  method: "post",
  path: "/auth/login",
  tags: ["auth"],
  summary: "Sign in with password and TOTP code; sets the session cookie",
  security: [],
  request: { body: jsonBody(LoginSchema) },
  responses: {
    200: jsonResponse(SessionSchema, "Signed in"),
    ...errors(400, 401, 429, 503),
  },
});

const logout = createRoute({
  operationId: "signOut",
  method: "post",
  path: "/auth/logout",
  tags: ["auth"],
  summary: "End this session (or revoke the bearer token used)",
  middleware: [requireRole(...ANY_ROLE)],
  security: SIGNED_IN,
  responses: { 204: { description: "Signed out" }, ...errors(401, 403, 503) },
});

const me = createRoute({
  operationId: "whoAmI",
  method: "get",
  path: "/auth/me",
  tags: ["auth"],
  summary: "The signed-in user",
  middleware: [requireRole(...ANY_ROLE)],
  security: SIGNED_IN,
  responses: { 200: jsonResponse(SessionSchema, "The session"), ...errors(401) },
});

const createToken = createRoute({
  operationId: "createToken",
  method: "post",
  path: "/auth/tokens",
  tags: ["auth"],
  summary: "Create a bearer token for scripts (returned once; needs a cookie session)",
  middleware: [requireRole(...ANY_ROLE)],
  security: [{ cookie: [] }],
  request: { body: { content: { "application/json": { schema: NewTokenSchema } } } },
  responses: {
    201: jsonResponse(CreatedTokenSchema, "The token, shown this once"),
    ...errors(400, 401, 403, 503),
  },
});

const listTokens = createRoute({
  operationId: "listTokens",
  method: "get",
  path: "/auth/tokens",
  tags: ["auth"],
  summary: "Your bearer tokens",
  middleware: [requireRole(...ANY_ROLE)],
  security: SIGNED_IN,
  responses: {
    200: jsonResponse(z.object({ tokens: z.array(TokenInfoSchema) }), "Tokens"),
    ...errors(401),
  },
});

const deleteToken = createRoute({
  operationId: "deleteToken",
  method: "delete",
  path: "/auth/tokens/{id}",
  tags: ["auth"],
  summary: "Revoke one of your bearer tokens",
  middleware: [requireRole(...ANY_ROLE)],
  security: SIGNED_IN,
  request: { params: z.object({ id: z.string().regex(/^[0-9a-f]{64}$/, "must be a token id") }) },
  responses: { 204: { description: "Revoked" }, ...errors(400, 401, 403, 404, 503) },
});

/** Codes of steps T-1, T and T+1 are accepted (one step of clock drift either way). */
const DRIFT_STEPS = 1;

/**
 * Checks the password and TOTP code and claims the code's step; returns the
 * user or why it failed.
 */
async function checkCredentials(
  deps: ApiDeps,
  body: z.infer<typeof LoginSchema>,
): Promise<{ user: UserRecord } | { reason: SignInFailureReason }> {
  const user = await deps.store.users.verifyUserPassword(body.username, body.password);
  if (user === null) return { reason: "bad-password" };
  if (!user.mfa.enrolled) return { reason: "mfa-not-enrolled" };
  const { secret } = await deps.store.users.getMfaSecrets(user.name);
  const nowSec = Math.floor(deps.clock.now() / 1000);
  const drift = verifyTotp(secret, body.code, nowSec, DRIFT_STEPS);
  if (drift === null) return { reason: "bad-code" };
  const step = Math.floor(nowSec / TOTP_PERIOD_S) + drift;
  // A code is accepted once: the step must be later than the last one used.
  // Step T stays acceptable while the clock is in step T + DRIFT_STEPS.
  const validUntil = (step + DRIFT_STEPS + 1) * TOTP_PERIOD_S * 1000;
  if (!(await deps.store.usedCodes.claim(user.name, step, validUntil))) {
    return { reason: "code-reused" };
  }
  return { user };
}

/** The auth router: login, logout, me, tokens. */
export function authRouter(
  deps: ApiDeps,
  throttle: SignInThrottle = new SignInThrottle(deps.clock),
  failures: SignInFailures = new SignInFailures(),
): OpenAPIHono<AppEnv> {
  const app = newRouter();

  app.openapi(login, async (c) => {
    const body = c.req.valid("json");
    const ip = clientIp(c);
    // The name is whatever was typed: no control character of it reaches a log line.
    const user = escapeControl(body.username);
    const record = (success: boolean, reason?: SignInFailureReason) => {
      if (reason !== undefined) failures.count(reason);
      deps.logger.record("management-login", { ip, user, success, reason });
    };
    const wait = throttle.retryAfter(body.username, ip);
    if (wait > 0) {
      record(false, "throttled");
      throw new ApiError(
        429,
        "too_many_attempts",
        `Too many failed sign-ins; try again in ${wait} s`,
        undefined,
        undefined,
        { "Retry-After": String(wait) },
      );
    }
    const result = await checkCredentials(deps, body);
    if ("reason" in result) {
      throttle.fail(body.username, ip);
      record(false, result.reason);
      throw new ApiError(401, "invalid_credentials", "Wrong user name, password or code");
    }
    const account = result.user;
    throttle.succeeded(body.username, ip);
    const { id, session } = await deps.store.sessions.createSession({
      user: account.name,
      role: account.role,
      kind: "cookie",
      ttlMs: SESSION_TTL_MS,
    });
    setCookie(c, SESSION_COOKIE, id, {
      httpOnly: true,
      sameSite: "Strict",
      path: "/",
      // The appliance serves only https; Strict: no cross-site request ever needs the session.
      secure: true,
      maxAge: SESSION_TTL_MS / 1000,
    });
    record(true);
    return c.json({
      user: toPublicUser(account),
      role: account.role,
      kind: "cookie" as const,
      csrfToken: session.csrfToken,
      expiresAt: session.expiresAt,
    }, 200);
  });

  app.openapi(logout, async (c) => {
    const auth = authOf(c);
    await deps.store.sessions.deleteSession(auth.id, auth.user.name);
    if (auth.kind === "cookie") deleteCookie(c, SESSION_COOKIE, { path: "/", secure: true });
    return c.body(null, 204);
  });

  app.openapi(me, (c) => {
    const { user, session, kind } = authOf(c);
    return c.json({
      user: toPublicUser(user),
      role: user.role,
      kind,
      csrfToken: kind === "cookie" ? session.csrfToken : undefined,
      expiresAt: session.expiresAt,
    }, 200);
  });

  app.openapi(createToken, async (c) => {
    const auth = authOf(c);
    if (auth.kind !== "cookie") {
      throw new ApiError(
        403,
        "session_required",
        "Tokens are created from a signed-in session only",
      );
    }
    const days = c.req.valid("json").ttlDays ?? TOKEN_TTL_DAYS;
    const { id, session } = await deps.store.sessions.createSession({
      user: auth.user.name,
      role: auth.user.role,
      kind: "token",
      ttlMs: days * 86400_000,
    });
    return c.json({
      token: id,
      id: session.idHash,
      createdAt: session.createdAt,
      expiresAt: session.expiresAt,
    }, 201);
  });

  app.openapi(listTokens, async (c) => {
    const auth = authOf(c);
    const sessions = await deps.store.sessions.listSessions(auth.user.name);
    const tokens = sessions.filter((s) => s.kind === "token").map((s) => ({
      id: s.idHash,
      createdAt: s.createdAt,
      expiresAt: s.expiresAt,
    }));
    return c.json({ tokens }, 200);
  });

  app.openapi(deleteToken, async (c) => {
    const auth = authOf(c);
    const { id } = c.req.valid("param");
    const sessions = await deps.store.sessions.listSessions(auth.user.name);
    if (!sessions.some((s) => s.kind === "token" && s.idHash === id)) {
      throw notFound(`token ${id.slice(0, 12)}... does not exist`);
    }
    await deps.store.sessions.deleteSessionByHash(id, auth.user.name);
    return c.body(null, 204);
  });

  return app;
}
