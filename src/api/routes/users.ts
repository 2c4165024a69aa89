/**
 * Users (IAM): administrators create, change and delete users. A new user
 * gets a TOTP secret shown once (secret, otpauth URI, QR code); they are not
 * active (no sign-in, no knocking) until `mfa/verify` accepts a code from it.
 * `mfa/rotate` starts the same two steps for a new secret while the old one
 * stays valid. The last enrolled administrator cannot be removed or demoted.
 */
import { isBlockedPort } from "../../knock/browser_ports.ts";
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { verifyTotp } from "../../knock/totp.ts";
import { toPublicUser, type UserRecord } from "../../store/users.ts";
import { authOf, requireRole, requireSelfOrAdmin } from "../auth.ts";
import { enrollment } from "../enrollment.ts";
import { ApiError, conflict } from "../errors.ts";
import {
  changed,
  errors,
  ifMatch,
  jsonBody,
  jsonResponse,
  newRouter,
  SIGNED_IN,
} from "../_router.ts";
import {
  NewUserSchema,
  UserEnrollmentSchema,
  UserPatchSchema,
  UserSchema,
  VerifySchema,
} from "../schemas.ts";
import type { ApiDeps, AppEnv } from "../types.ts";

const NameParam = z.object({
  name: z.string().min(1).max(64).openapi({
    param: { name: "name", in: "path" },
    example: "alice",
  }),
});
const IfMatchHeader = z.object({
  "if-match": z.string().optional().openapi({ description: "Expected user version" }),
});
const admin = [requireRole("administrator")];
const selfOrAdmin = [requireSelfOrAdmin()];
const tags = ["users"];

const list = createRoute({
  operationId: "listUsers",
  method: "get",
  path: "/users",
  tags,
  summary: "Every user",
  middleware: admin,
  security: SIGNED_IN,
  responses: {
    200: jsonResponse(z.object({ users: z.array(UserSchema) }), "Users"),
    ...errors(401, 403),
  },
});

const get = createRoute({
  operationId: "getUser",
  method: "get",
  path: "/users/{name}",
  tags,
  summary: "One user (administrators, or the user themselves)",
  middleware: selfOrAdmin,
  security: SIGNED_IN,
  request: { params: NameParam },
  responses: { 200: jsonResponse(UserSchema, "The user"), ...errors(401, 403, 404) },
});

const create = createRoute({
  operationId: "createUser",
  method: "post",
  path: "/users",
  tags,
  summary: "Create a user; returns the TOTP enrolment to verify",
  middleware: admin,
  security: SIGNED_IN,
  request: { body: jsonBody(NewUserSchema) },
  responses: {
    201: jsonResponse(UserEnrollmentSchema, "Created, not active until mfa/verify"),
    ...errors(400, 401, 403, 409, 422, 503),
  },
});

const update = createRoute({
  operationId: "updateUser",
  method: "patch",
  path: "/users/{name}",
  tags,
  summary: "Change password, role, knock settings or allowed rules",
  middleware: admin,
  security: SIGNED_IN,
  request: { params: NameParam, headers: IfMatchHeader, body: jsonBody(UserPatchSchema) },
  responses: {
    200: jsonResponse(UserSchema, "Updated"),
    ...errors(400, 401, 403, 404, 409, 422, 503),
  },
});

const remove = createRoute({
  operationId: "deleteUser",
  method: "delete",
  path: "/users/{name}",
  tags,
  summary: "Delete a user, ending their sessions and unlocks",
  middleware: admin,
  security: SIGNED_IN,
  request: { params: NameParam },
  responses: { 204: { description: "Deleted" }, ...errors(401, 403, 404, 409, 422, 503) },
});

const rotate = createRoute({
  operationId: "rotateUserSecret",
  method: "post",
  path: "/users/{name}/mfa/rotate",
  tags,
  summary: "Start enrolling a new TOTP secret (the old one stays valid until verified)",
  middleware: selfOrAdmin,
  security: SIGNED_IN,
  request: { params: NameParam },
  responses: {
    200: jsonResponse(UserEnrollmentSchema, "The new secret to verify"),
    ...errors(401, 403, 404, 503),
  },
});

const verify = createRoute({
  operationId: "verifyUserMfa",
  method: "post",
  path: "/users/{name}/mfa/verify",
  tags,
  summary: "Confirm the enrolment with a code from the authenticator",
  middleware: selfOrAdmin,
  security: SIGNED_IN,
  request: { params: NameParam, body: jsonBody(VerifySchema) },
  responses: { 200: jsonResponse(UserSchema, "Enrolled"), ...errors(400, 401, 403, 404, 409, 503) },
});

/** Throws 409 when removing `u`'s administrator role would leave no enrolled administrator. */
async function keepAnAdministrator(deps: ApiDeps, u: UserRecord, what: string): Promise<void> {
  if (u.role !== "administrator" || !u.mfa.enrolled) return;
  const others = (await deps.store.users.listUsers()).filter((o) =>
    o.name !== u.name && o.role === "administrator" && o.mfa.enrolled
  );
  if (others.length === 0) {
    throw conflict(`Cannot ${what} user "${u.name}": it is the last administrator`, "role");
  }
}

/** Ends every unlock held by `name` in the data plane and the saved snapshot. */
async function revokeUnlocksOf(deps: ApiDeps, name: string, why: string): Promise<void> {
  try {
    for (const u of await deps.datapath.unlocks()) {
      if (u.user !== name) continue;
      await deps.datapath.revoke(u.ip);
      await deps.store.unlocks.revokeUnlock(u.ip, why);
    }
  } catch (err) {
    console.error(`api: cannot revoke the unlocks of user "${name}":`, err);
  }
}

/** The users router. */
export function usersRouter(deps: ApiDeps): OpenAPIHono<AppEnv> {
  const app = newRouter();
  const users = deps.store.users;

  app.openapi(list, async (c) => {
    return c.json({ users: (await users.listUsers()).map(toPublicUser) }, 200);
  });

  app.openapi(get, async (c) => {
    const { name } = c.req.valid("param");
    return c.json(toPublicUser(await users.getUser(name)), 200);
  });

  app.openapi(create, async (c) => {
    const actor = authOf(c).user.name;
    const body = c.req.valid("json");
    refuseBrowserBlockedPort(body.knock?.firstPort);
    const user = await users.createUser({ allowedRules: ["*"], ...body }, actor);
    const { secret } = await users.getMfaSecrets(user.name);
    await changed(deps, "users", actor, `user "${user.name}" created`);
    return c.json({
      user: toPublicUser(user),
      enrollment: await enrollment(user.name, secret),
    }, 201);
  });

  app.openapi(update, async (c) => {
    const actor = authOf(c).user.name;
    const { name } = c.req.valid("param");
    const patch = c.req.valid("json");
    refuseBrowserBlockedPort(patch.knock?.firstPort);
    const before = await users.getUser(name);
    if (patch.role !== undefined && patch.role !== "administrator") {
      await keepAnAdministrator(deps, before, "demote");
    }
    const version = ifMatch(c.req.valid("header")["if-match"]);
    const after = await users.updateUser(name, patch, actor, version);
    if (patch.password !== undefined) await deps.store.sessions.deleteUserSessions(name, actor);
    await changed(deps, "users", actor, `user "${name}" changed`);
    if (before.knock.enabled && !after.knock.enabled) {
      await revokeUnlocksOf(deps, name, "knock-disabled");
    }
    return c.json(toPublicUser(after), 200);
  });

  app.openapi(remove, async (c) => {
    const actor = authOf(c).user.name;
    const { name } = c.req.valid("param");
    await keepAnAdministrator(deps, await users.getUser(name), "delete");
    await users.deleteUser(name, actor);
    await deps.store.sessions.deleteUserSessions(name, actor);
    await changed(deps, "users", actor, `user "${name}" deleted`);
    await revokeUnlocksOf(deps, name, "user-deleted");
    return c.body(null, 204);
  });

  app.openapi(rotate, async (c) => {
    const { name } = c.req.valid("param");
    const actor = authOf(c).user.name;
    const secret = await users.beginMfaEnrollment(name, actor);
    return c.json({
      user: toPublicUser(await users.getUser(name)),
      enrollment: await enrollment(name, secret),
    }, 200);
  });

  app.openapi(verify, async (c) => {
    const { name } = c.req.valid("param");
    const actor = authOf(c).user.name;
    const { code } = c.req.valid("json");
    const s = await users.getMfaSecrets(name);
    const target = s.pending ?? (s.enrolled ? null : s.secret);
    if (target === null) {
      throw conflict(`User "${name}" has no enrolment to verify; start one with mfa/rotate`);
    }
    if (verifyTotp(target, code, Math.floor(deps.clock.now() / 1000), 1) === null) {
      throw new ApiError(
        400,
        "invalid_code",
        `Code for user "${name}" does not match the secret being enrolled ` +
          `(check the authenticator's clock)`,
        "code",
      );
    }
    const user = await users.confirmMfaEnrollment(name, actor);
    await changed(deps, "users", actor, `user "${name}" enrolled a TOTP secret`);
    return c.json(toPublicUser(user), 200);
  });

  return app;
}

/** A first knock port the web knock page could never knock (browsers refuse it) is refused. */
function refuseBrowserBlockedPort(port: number | undefined): void {
  if (port === undefined || !isBlockedPort(port)) return;
  throw new ApiError(
    400,
    "invalid_input",
    `first knock port ${port} is refused by web browsers, so the web knock tool could not knock it; choose another`,
    "knock.firstPort",
  );
}
