/**
 * The management API: one Hono app with a router per resource under
 * `/api/v1`, `/metrics`, the OpenAPI description at `/api/v1/openapi.json`
 * and Swagger UI at `/api/docs/`. Serve it with `Deno.serve(app.fetch)`
 * (the connection info Deno passes is where the client IP comes from).
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { authenticate, SESSION_COOKIE } from "./auth.ts";
import { cachedClockHealth } from "./clock_health.ts";
import { docsRouter } from "./docs.ts";
import { ApiError, errorResponse, onError, onNotFound } from "./errors.ts";
import { metricsRouter } from "./metrics.ts";
import { newRouter } from "./_router.ts";
import { auditRouter } from "./routes/audit.ts";
import { authRouter } from "./routes/auth.ts";
import { eventsRouter } from "./routes/events.ts";
import { healthRouter } from "./routes/health.ts";
import { nodesRouter } from "./routes/nodes.ts";
import { rulesRouter } from "./routes/rules.ts";
import { settingsRouter } from "./routes/settings.ts";
import { statusRouter } from "./routes/status.ts";
import { tlsRouter } from "./routes/tls.ts";
import { uplinksRouter } from "./routes/uplinks.ts";
import { usersRouter } from "./routes/users.ts";
import { securityHeaders } from "./security.ts";
import { SignInFailures } from "./sign_in_failures.ts";
import { SignInThrottle, type ThrottleOptions } from "./throttle.ts";
import type { ApiDeps, AppEnv } from "./types.ts";

/** Base path of every resource. */
export const API_BASE = "/api/v1";
/** Largest request body accepted. */
export const MAX_BODY_BYTES = 64 * 1024;
/** Version reported in the OpenAPI description. */
export const API_VERSION = "1.0.0";

/** Tuning for tests and special deployments. */
export interface AppOptions {
  /** Sign-in throttling; default 5 failures per (user, source) and 20 per source in 5 minutes. */
  throttle?: ThrottleOptions;
  /** Where swagger-ui-dist lives; found automatically by default. */
  swaggerUiDir?: string | null;
}

/**
 * package.json is private with no license: the document says so (an SPDX
 * LicenseRef) rather than invent one. A constant, as doc31's types know only
 * OpenAPI 3.0's license object (no `identifier`).
 */
const LICENSE = { name: "Proprietary (no licence granted)", identifier: "LicenseRef-Proprietary" };

/** Builds the management API over `deps`. */
export function createApp(deps: ApiDeps, options: AppOptions = {}): OpenAPIHono<AppEnv> {
  const app = newRouter();
  const startedAt = deps.startedAt ?? deps.clock.now();
  const clock = cachedClockHealth(deps);
  app.onError(onError);
  app.notFound(onNotFound);
  app.use("*", securityHeaders());
  app.use(
    `${API_BASE}/*`,
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) =>
        errorResponse(
          c,
          new ApiError(413, "payload_too_large", `Request body over ${MAX_BODY_BYTES} bytes`),
        ),
    }),
  );
  app.use(`${API_BASE}/*`, authenticate(deps.store));
  app.use("/metrics", authenticate(deps.store));

  const throttle = new SignInThrottle(deps.clock, options.throttle);
  const signInFailures = new SignInFailures();
  app.route(API_BASE, authRouter(deps, throttle, signInFailures));
  app.route(API_BASE, usersRouter(deps));
  app.route(API_BASE, rulesRouter(deps));
  app.route(API_BASE, settingsRouter(deps));
  app.route(API_BASE, statusRouter(deps, clock, startedAt));
  app.route(API_BASE, uplinksRouter(deps));
  app.route(API_BASE, eventsRouter(deps));
  app.route(API_BASE, auditRouter(deps));
  app.route(API_BASE, healthRouter(clock, deps.store));
  app.route(API_BASE, nodesRouter(deps));
  app.route(API_BASE, tlsRouter(deps));
  app.route("/", metricsRouter(deps, { startedAt, clock, signInFailures }));
  app.route("/", docsRouter(options.swaggerUiDir));

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: "A token from POST /api/v1/auth/tokens",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "cookie", {
    type: "apiKey",
    in: "cookie",
    name: SESSION_COOKIE,
    description: "The session cookie set by POST /api/v1/auth/login (send X-CSRF-Token too)",
  });
  app.doc31(`${API_BASE}/openapi.json`, {
    openapi: "3.1.0",
    info: {
      title: "Knockgate management API",
      version: API_VERSION,
      description: "Users, rules, settings and live status of the Knockgate appliance.",
      license: LICENSE,
    },
    // Paths hold /api/v1 themselves: the server is the appliance the document came from.
    servers: [{ url: "/", description: "This appliance (the document's own origin)" }],
  });
  return app;
}
