/**
 * The management listener's certificate: `GET /tls` (no sign-in: a client
 * sees the certificate in every handshake anyway; it is where the fingerprint
 * to pin is read) and `PUT /tls`, an administrator's own PEM certificate and
 * key, checked (parses, valid now, the key is the certificate's) and written
 * beside the store. Deno.serve cannot swap a listener's certificate, so the
 * new pair is served from the next start; `pending` shows it until then.
 */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { validatePair, writePair } from "../../host/tls.ts";
import { authOf, requireRole } from "../auth.ts";
import { ApiError, badRequest } from "../errors.ts";
import { errors, jsonBody, jsonResponse, newRouter, SIGNED_IN } from "../_router.ts";
import { TlsPutSchema, TlsSchema } from "../schemas.ts";
import type { ApiDeps, AppEnv, TlsState } from "../types.ts";

const get = createRoute({
  operationId: "getTls",
  method: "get",
  path: "/tls",
  tags: ["tls"],
  summary: "The certificate the management listener serves, and its SHA-256 fingerprint",
  security: [],
  responses: { 200: jsonResponse(TlsSchema, "The certificate"), ...errors(404) },
});

const put = createRoute({
  operationId: "putTls",
  method: "put",
  path: "/tls",
  tags: ["tls"],
  summary: "Install an own certificate and key (served from the next start)",
  middleware: [requireRole("administrator")],
  security: SIGNED_IN,
  request: { body: jsonBody(TlsPutSchema) },
  responses: {
    200: jsonResponse(TlsSchema, "Installed; see pending"),
    ...errors(400, 401, 403, 404, 409),
  },
});

function view(s: TlsState) {
  return {
    active: s.active,
    source: s.source,
    pending: s.pending,
    replaceable: s.source !== "config",
  };
}

function stateOf(deps: ApiDeps): TlsState {
  if (!deps.tls) throw new ApiError(404, "not_found", "This server does not serve TLS");
  return deps.tls;
}

/** The TLS router. */
export function tlsRouter(deps: ApiDeps): OpenAPIHono<AppEnv> {
  const app = newRouter();
  app.openapi(get, (c) => c.json(view(stateOf(deps)), 200));
  app.openapi(put, async (c) => {
    const state = stateOf(deps);
    const actor = authOf(c).user.name;
    if (state.source === "config") {
      throw new ApiError(
        409,
        "tls_in_config",
        `The configuration file's tls section names the certificate (${state.paths.cert}); ` +
          "replace those files instead",
      );
    }
    const pair = c.req.valid("json");
    const info = validatePair(pair, deps.clock.now());
    if (typeof info === "string") {
      throw badRequest(`Cannot use this certificate: ${info}`, /key/.test(info) ? "key" : "cert");
    }
    await writePair(state.paths, pair);
    state.pending = info;
    deps.logger.record("config-changed", {
      source: "api",
      detail:
        `TLS certificate ${info.fingerprint} installed (served from the next start) by ${actor}`,
    });
    return c.json(view(state), 200);
  });
  return app;
}
