/**
 * The pages read everything through the management API, in-process: a
 * request carries the browser's own session cookie, so roles and views are
 * exactly what the browser's scripts get from `/api/v1` afterwards.
 */
import type { Context } from "hono";
import type { ErrorBody } from "../src/api/errors.ts";

/** Something that answers HTTP requests like a Hono app. */
export interface Fetcher {
  request(input: string, init?: RequestInit, env?: unknown): Response | Promise<Response>;
}

/** An API answer: the parsed body, or the API's error. */
export type ApiResult<T> =
  | { ok: true; status: number; body: T }
  | { ok: false; status: number; error: ErrorBody["error"] };

/** Reads JSON from the API as the browser behind `c`. */
export class PageApi {
  /** `api` is the management app; `c` the page request whose cookie is forwarded. */
  constructor(private readonly api: Fetcher, private readonly c: Context) {}

  /** GETs `path` (e.g. `/api/v1/status`). */
  async get<T>(path: string): Promise<ApiResult<T>> {
    const url = new URL(path, this.c.req.url).href;
    const headers: Record<string, string> = { accept: "application/json" };
    const cookie = this.c.req.header("cookie");
    if (cookie !== undefined) headers.cookie = cookie;
    const res = await this.api.request(url, { headers }, this.c.env);
    const text = await res.text();
    let body: unknown = null;
    try {
      body = text === "" ? null : JSON.parse(text);
    } catch {
      body = null;
    }
    if (res.ok) return { ok: true, status: res.status, body: body as T };
    const error = (body as Partial<ErrorBody> | null)?.error ??
      { status: res.status, code: "http_error", message: `${res.status} ${res.statusText}` };
    return { ok: false, status: res.status, error };
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
