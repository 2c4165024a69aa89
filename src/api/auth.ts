/**
 * Who is asking: a session cookie (browser, after password + TOTP) or a
 * bearer token (scripts). `authenticate` resolves either into the context;
 * `requireRole` guards a route, checking the CSRF header for cookie sessions
 * on state-changing methods (tokens are not sent by browsers on their own,
 * so they need none).
 */
import type { Context, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import { getConnInfo } from "hono/deno";
import { timingSafeEqual } from "../knock/timing_safe_equal.ts";
import type { Store } from "../store/mod.ts";
import { type Role, ROLES } from "../store/users.ts";
import { ApiError } from "./errors.ts";
import type { AppEnv, AuthContext } from "./types.ts";

/** Name of the session cookie. */
export const SESSION_COOKIE = "kg_session";
/** Header carrying the CSRF token of a cookie session. */
export const CSRF_HEADER = "X-CSRF-Token";
/** Every role: for routes any signed-in user may call. */
export const ANY_ROLE: readonly Role[] = ROLES;

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
/** Session ids and tokens are 32 random bytes in hex. */
const ID_RE = /^[0-9a-f]{64}$/;

/**
 * The client's IP address from the connection (Deno.serve's `info`, which
 * Hono exposes as `c.env`); "unknown" when there is none, as under
 * `app.request()` without an env. Proxy headers are not trusted.
 */
export function clientIp(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** The session id or token the request presents, and how. */
function presented(c: Context): { id: string; kind: "cookie" | "token" } | null {
  const header = c.req.header("authorization");
  if (header !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m && ID_RE.test(m[1]) ? { id: m[1], kind: "token" } : null;
  }
  const cookie = getCookie(c, SESSION_COOKIE);
  return cookie !== undefined && ID_RE.test(cookie) ? { id: cookie, kind: "cookie" } : null;
}

/** The principal of the request, or null. The user is re-read so role changes apply at once. */
export async function resolveAuth(c: Context, store: Store): Promise<AuthContext | null> {
  const p = presented(c);
  if (p === null) return null;
  const session = await store.sessions.getSession(p.id);
  // A cookie id sent as a bearer token (or the reverse) is refused.
  if (session === null || session.kind !== p.kind) return null;
  const user = await store.users.findUser(session.user);
  if (user === null || !user.mfa.enrolled) return null;
  return { user, session, id: p.id, kind: p.kind };
}

/** Puts the request's principal (or null) into `c.var.auth`. */
export function authenticate(store: Store): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    c.set("auth", await resolveAuth(c, store));
    await next();
  };
}

/** 401 with a hint how to authenticate. */
export function unauthenticated(): ApiError {
  return new ApiError(
    401,
    "unauthenticated",
    "Sign in (POST /api/v1/auth/login) or send a bearer token",
    undefined,
    undefined,
    { "WWW-Authenticate": 'Bearer realm="knockgate"' },
  );
}

/** Throws 403 unless a cookie session's unsafe request carries its CSRF token. */
function checkCsrf(c: Context, auth: AuthContext): void {
  if (auth.kind !== "cookie" || SAFE_METHODS.has(c.req.method)) return;
  const sent = c.req.header(CSRF_HEADER) ?? "";
  if (!timingSafeEqual(sent, auth.session.csrfToken)) {
    throw new ApiError(
      403,
      "csrf_failed",
      `Missing or wrong ${CSRF_HEADER} header (a cookie session needs it on ${c.req.method})`,
    );
  }
}

/** The request's principal; throws 401 when there is none. */
export function authOf(c: Context<AppEnv>): AuthContext {
  const auth = c.get("auth");
  if (!auth) throw unauthenticated();
  return auth;
}

/**
 * Guards a route: 401 without a principal, 403 on a failed CSRF check or a
 * role not in `roles`.
 */
export function requireRole(...roles: Role[]): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const auth = authOf(c);
    checkCsrf(c, auth);
    if (!roles.includes(auth.user.role)) {
      throw new ApiError(
        403,
        "forbidden",
        `Role ${auth.user.role} may not ${c.req.method} ${c.req.path} (needs ${
          roles.join(" or ")
        })`,
      );
    }
    await next();
  };
}

/**
 * Guards a route about one user (path parameter `param`): 401 without a
 * principal, 403 on a failed CSRF check or unless the principal is that user
 * or an administrator. Checked before the body is validated.
 */
export function requireSelfOrAdmin(param = "name"): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const auth = authOf(c);
    checkCsrf(c, auth);
    const name = c.req.param(param);
    if (auth.user.name !== name && auth.user.role !== "administrator") {
      throw new ApiError(403, "forbidden", `Only "${name}" or an administrator may do this`);
    }
    await next();
  };
}
