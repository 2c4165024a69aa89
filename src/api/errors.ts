/**
 * The API's one error type and the handlers that turn every failure into the
 * same JSON body: `{error: {status, code, message, field?, issues?},
 * problems?: [{field, message, clash?}]}`. Store errors map to statuses
 * (NotFoundError 404, ConflictError 409, ValidationError 400,
 * ConfigProblemError 409 when it clashes with another stored rule or user,
 * else 422; StoreUnavailableError 503, the etcd store degraded); request validation (shape only) fails with 400. Every
 * validation error lists its problems, each naming the field in the
 * operator's words (`publicPorts.start`, `ports[0].ports`, `users[1]`) and,
 * for a clash, the other party.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import {
  ConfigProblemError,
  ConflictError,
  type FieldProblem,
  NotFoundError,
  StoreUnavailableError,
  ValidationError,
} from "../store/errors.ts";

/** One problem of a request, by field. */
export interface FieldIssue {
  /** Dotted path of the field, e.g. `knock.firstPort`; empty for the whole body. */
  field: string;
  reason: string;
}

/** One problem of a validation error: the field, a sentence, and the other party of a clash. */
export type Problem = FieldProblem;

/** The JSON body of every error response. */
export interface ErrorBody {
  error: {
    status: number;
    /** Stable machine-readable code, e.g. `not_found`, `invalid_input`. */
    code: string;
    message: string;
    /** The input field at fault, when there is one. */
    field?: string;
    /** Every field problem, for validation errors (`problems` in the older shape). */
    issues?: FieldIssue[];
  };
  /** Every problem of a validation error, all at once. */
  problems?: Problem[];
}

/** An error the API answers with `status` and a JSON body. */
export class ApiError extends Error {
  /** `code` is the stable machine-readable code; `field` the input field at fault. */
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly issues?: FieldIssue[],
    /** Extra response headers, e.g. Retry-After. */
    readonly headers: Record<string, string> = {},
    /** Every problem of a validation error. */
    readonly problems?: Problem[],
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** The response body. */
  body(): ErrorBody {
    const error: ErrorBody["error"] = {
      status: this.status,
      code: this.code,
      message: this.message,
    };
    if (this.field !== undefined) error.field = this.field;
    if (this.issues !== undefined) error.issues = this.issues;
    return this.problems === undefined ? { error } : { error, problems: this.problems };
  }
}

/** 400: the input is malformed. */
export function badRequest(message: string, field?: string): ApiError {
  return fieldError(400, "invalid_input", message, field);
}

/** An ApiError about one field, with it as the one problem. */
function fieldError(
  status: ContentfulStatusCode,
  code: string,
  message: string,
  field?: string,
): ApiError {
  const problems = field === undefined ? undefined : [{ field, message }];
  const issues = field === undefined ? undefined : [{ field, reason: message }];
  return new ApiError(status, code, message, field, issues, {}, problems);
}

/** 404: the named thing does not exist. */
export function notFound(message: string): ApiError {
  return new ApiError(404, "not_found", message);
}

/** 409: the request clashes with stored state. */
export function conflict(message: string, field?: string): ApiError {
  return new ApiError(409, "conflict", message, field);
}

const TARGET_NAMES: Record<string, string> = {
  json: "request body",
  query: "query parameter",
  param: "path parameter",
  header: "header",
  cookie: "cookie",
};

/** The path of a zod issue in the operator's words, e.g. `knock.firstPort` or `ports[0].ports`. */
function issuePath(issue: z.core.$ZodIssue): string {
  return issue.path.reduce<string>(
    (acc, k) =>
      typeof k === "number" ? `${acc}[${k}]` : acc === "" ? String(k) : `${acc}.${String(k)}`,
    "",
  );
}

/** A 400 ApiError listing every zod issue, the first one named in the message. */
export function zodError(target: string, error: z.ZodError): ApiError {
  const issues: FieldIssue[] = error.issues.map((i) => {
    const keys = i.code === "unrecognized_keys" ? ` (${i.keys.join(", ")})` : "";
    return { field: issuePath(i), reason: `${i.message}${keys}` };
  });
  const where = TARGET_NAMES[target] ?? target;
  const sentence = (i: FieldIssue) =>
    i.field === "" ? `Invalid ${where}: ${i.reason}` : `Invalid ${where}: ${i.field}: ${i.reason}`;
  const first = issues[0] ?? { field: "", reason: "invalid" };
  const field = first.field === "" ? undefined : first.field;
  const problems = issues.map((i) => ({ field: i.field, message: sentence(i) }));
  return new ApiError(400, "invalid_input", sentence(first), field, issues, {}, problems);
}

/** 409 when a refused configuration write clashes with another rule or user, else 422. */
function configError(err: ConfigProblemError): ApiError {
  const issues = err.problems.map((p) => ({ field: p.field, reason: p.message }));
  return new ApiError(
    err.conflict ? 409 : 422,
    err.conflict ? "conflict" : "invalid_config",
    err.message,
    err.field,
    issues,
    {},
    err.problems,
  );
}

/** The ApiError a thrown value stands for, or null when it is unexpected. */
export function toApiError(err: unknown): ApiError | null {
  if (err instanceof ApiError) return err;
  if (err instanceof NotFoundError) return new ApiError(404, "not_found", err.message);
  if (err instanceof StoreUnavailableError) {
    return new ApiError(503, "store_unavailable", err.message, undefined, undefined, {
      "Retry-After": "5",
    });
  }
  if (err instanceof ConfigProblemError) return configError(err);
  if (err instanceof ConflictError) return fieldError(409, "conflict", err.message, err.field);
  if (err instanceof ValidationError) {
    return fieldError(400, "invalid_input", err.message, err.field);
  }
  if (err instanceof HTTPException) {
    const status = err.status as ContentfulStatusCode;
    const code = status === 415
      ? "unsupported_media_type"
      : status === 413
      ? "payload_too_large"
      : status === 400
      ? "invalid_input"
      : "http_error";
    return new ApiError(status, code, err.message || "Request failed");
  }
  return null;
}

/** Sends `e` as the JSON error response. */
export function errorResponse(c: Context, e: ApiError): Response {
  for (const [k, v] of Object.entries(e.headers)) c.header(k, v);
  return c.json(e.body(), e.status);
}

/** `app.onError`: every thrown error becomes the JSON body; unexpected ones a 500. */
export function onError(err: Error, c: Context): Response {
  const e = toApiError(err);
  if (e !== null) return errorResponse(c, e);
  console.error(`api: ${c.req.method} ${c.req.path}:`, err);
  return errorResponse(c, new ApiError(500, "internal", "Internal error; see the appliance log"));
}

/** `app.notFound`: unknown routes answer 404 in the same shape. */
export function onNotFound(c: Context): Response {
  return errorResponse(
    c,
    new ApiError(404, "not_found", `No such endpoint: ${c.req.method} ${c.req.path}`),
  );
}
