/** Shared pieces of the resource routers: the router factory, response shorthands, change notes. */
import { OpenAPIHono, type z } from "@hono/zod-openapi";
import { badRequest, zodError } from "./errors.ts";
import { ErrorSchema } from "./schemas.ts";
import type { ApiDeps, AppEnv, ChangeKind } from "./types.ts";

/** A router whose request validation failures become the API's 400 error. */
export function newRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw zodError(result.target, result.error);
    },
  });
}

const ERROR_TEXT: Record<number, string> = {
  400: "Invalid input (the field is named)",
  401: "Not signed in",
  403: "Role not allowed, or CSRF token missing",
  404: "Not found",
  409:
    "Conflicts with stored state (`problems` names each field and the rule or user it clashes with)",
  413: "Request body over 64 KiB",
  422: "The configuration would be invalid (`problems` names each field and why)",
  429: "Too many failed attempts; see Retry-After",
  503: "The store is unreachable (etcd degraded mode): nothing was changed; see Retry-After",
};

/** OpenAPI error responses for `statuses`. */
export function errors(...statuses: number[]) {
  return Object.fromEntries(statuses.map((s) => [s, {
    description: ERROR_TEXT[s] ?? "Error",
    content: { "application/json": { schema: ErrorSchema } },
  }]));
}

/** An OpenAPI JSON response. */
export function jsonResponse<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
}

/** A required OpenAPI JSON request body. */
export function jsonBody<T extends z.ZodType>(schema: T) {
  return { content: { "application/json": { schema } }, required: true };
}

/** Security requirement of routes that need a principal. */
export const SIGNED_IN: Record<string, string[]>[] = [{ bearer: [] }, { cookie: [] }];

/**
 * Records a change made through the API as an event and pushes it into the
 * data plane; resolves once `deps.onChange` has applied it.
 */
export async function changed(
  deps: ApiDeps,
  what: ChangeKind,
  actor: string,
  detail: string,
): Promise<void> {
  deps.logger.record("config-changed", { source: "api", detail: `${detail} by ${actor}` });
  await deps.onChange?.(what);
}

/** The version an `If-Match` header asks for ("3" or `"3"`), undefined when absent. */
export function ifMatch(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*(?:W\/)?"?(\d{1,9})"?\s*$/.exec(header);
  if (!m) {
    throw badRequest(`If-Match ${JSON.stringify(header)} is not a version number`, "If-Match");
  }
  return Number(m[1]);
}
