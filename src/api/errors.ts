/**
 * The API's one error type and the handlers that turn every failure into the
 * same JSON body: `{error: {status, code, message, field?}}`. Store errors
 * map to statuses (NotFoundError 404, ConflictError 409, ValidationError
 * 400); request validation fails with 400 naming the field.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import { ConflictError, NotFoundError, ValidationError } from "../store/errors.ts";

/** One problem of a request, by field. */
export interface FieldIssue {
  /** Dotted path of the field, e.g. `knock.firstPort`; empty for the whole body. */
  field: string;
  reason: string;
}

/** The JSON body of every error response. */
export interface ErrorBody {
  error: {
    status: number;
    /** Stable machine-readable code, e.g. `not_found`, `invalid_input`. */
    code: string;
    message: string;
    /** The input field at fault, when there is one. */
    field?: string;
    /** Every field problem, for validation errors. */
    issues?: FieldIssue[];
  };
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
    return { error };
  }
}

/** 400: the input is malformed. */
export function badRequest(message: string, field?: string): ApiError {
  return new ApiError(400, "invalid_input", message, field);
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

/** The dotted path of a zod issue, e.g. `knock.firstPort` or `ports.0.ports`. */
function issuePath(issue: z.core.$ZodIssue): string {
  return issue.path.map(String).join(".");
}

/** A 400 ApiError listing every zod issue, the first one named in the message. */
export function zodError(target: string, error: z.ZodError): ApiError {
  const issues: FieldIssue[] = error.issues.map((i) => {
    const keys = i.code === "unrecognized_keys" ? ` (${i.keys.join(", ")})` : "";
    return { field: issuePath(i), reason: `${i.message}${keys}` };
  });
  const first = issues[0] ?? { field: "", reason: "invalid" };
  const where = TARGET_NAMES[target] ?? target;
  const field = first.field === "" ? undefined : first.field;
  const message = field === undefined
    ? `Invalid ${where}: ${first.reason}`
    : `Invalid ${where}: ${field}: ${first.reason}`;
  return new ApiError(400, "invalid_input", message, field, issues);
}

/** The ApiError a thrown value stands for, or null when it is unexpected. */
export function toApiError(err: unknown): ApiError | null {
  if (err instanceof ApiError) return err;
  if (err instanceof NotFoundError) return new ApiError(404, "not_found", err.message);
  if (err instanceof ConflictError) return new ApiError(409, "conflict", err.message, err.field);
  if (err instanceof ValidationError) {
    return new ApiError(400, "invalid_input", err.message, err.field, [
      { field: err.field, reason: err.message },
    ]);
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
