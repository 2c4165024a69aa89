/**
 * The UI reads and writes everything through the management API, in-process
 * (`app.request()`): a request carries the browser's own session cookie and,
 * for changes, the `X-CSRF-Token` the page's script sent, so roles, audit and
 * validation are exactly the API's.
 */
import type { Context } from "hono";
import type { ErrorBody } from "../src/api/errors.ts";
import { type Problem, problemsOf } from "./_problems.ts";

/** Something that answers HTTP requests like a Hono app. */
export interface Fetcher {
  request(input: string, init?: RequestInit, env?: unknown): Response | Promise<Response>;
}

/** An API answer: the parsed body, or the API's error with every problem it names. */
export type ApiResult<T> =
  | { ok: true; status: number; body: T; headers: Headers }
  | {
    ok: false;
    status: number;
    error: ErrorBody["error"];
    problems: Problem[];
    headers: Headers;
  };

/** Options of `PageApi.send`. */
export interface SendOptions {
  /** Sent as JSON. */
  body?: unknown;
  /** A version read before, sent as `If-Match`. */
  version?: number | string;
}

/** Calls the API as the browser behind `c`. */
export class PageApi {
  /** `api` is the management app; `c` the page request whose cookie is forwarded. */
  constructor(private readonly api: Fetcher, private readonly c: Context) {}

  /** Sends `method path` and parses the answer. */
  async send<T>(method: string, path: string, opts: SendOptions = {}): Promise<ApiResult<T>> {
    const url = new URL(path, this.c.req.url).href;
    const headers: Record<string, string> = { accept: "application/json" };
    const cookie = this.c.req.header("cookie");
    if (cookie !== undefined) headers.cookie = cookie;
    const csrf = this.c.req.header("x-csrf-token");
    if (method !== "GET" && csrf !== undefined) headers["x-csrf-token"] = csrf;
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    if (opts.version !== undefined) headers["if-match"] = `"${opts.version}"`;
    const res = await this.api.request(url, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    }, this.c.env);
    const text = await res.text();
    let body: unknown = null;
    try {
      body = text === "" ? null : JSON.parse(text);
    } catch {
      body = null;
    }
    if (res.ok) return { ok: true, status: res.status, body: body as T, headers: res.headers };
    const error = (body as Partial<ErrorBody> | null)?.error ??
      { status: res.status, code: "http_error", message: `${res.status} ${res.statusText}` };
    return {
      ok: false,
      status: res.status,
      error,
      problems: problemsOf({ ...(body as object | null ?? {}), error }),
      headers: res.headers,
    };
  }

  /** GETs `path` (e.g. `/api/v1/status`). */
  get<T>(path: string): Promise<ApiResult<T>> {
    return this.send<T>("GET", path);
  }

  /** GETs `path` and throws `PageError` on any error answer. */
  async must<T>(path: string): Promise<T> {
    const r = await this.get<T>(path);
    if (!r.ok) throw new PageError(r.status, r.error.message);
    return r.body;
  }
}

/** A page cannot be shown: 403, 404 or an API failure, rendered as an error page. */
export class PageError extends Error {
  /** `status` becomes the page's HTTP status. */
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = "PageError";
  }
}
