/**
 * HTTP client of the management API. Every failure becomes an
 * `ApiRequestError` (the API answered with its error JSON) or a
 * `NetworkError` (no answer); the shell maps both to exit code 1.
 */
import type { ApiErrorBody, CreatedToken, Session } from "./api_types.ts";
import { messageOf, UsageError } from "./io.ts";

/** Base path of every resource. */
export const API_BASE = "/api/v1";
/** The session cookie set by `/auth/login` (see src/api/auth.ts). */
const SESSION_COOKIE = "kg_session";
/** The header a cookie session sends its CSRF token in. */
const CSRF_HEADER = "X-CSRF-Token";
/** How long a request may take before it counts as a network failure. */
export const DEFAULT_TIMEOUT_MS = 15_000;

/** How requests authenticate. */
export type Credentials =
  | { kind: "token"; token: string }
  | { kind: "cookie"; cookie: string; csrf: string }
  | null;

/** The API answered with an error status; fields as in its `{error: {...}}` body. */
export class ApiRequestError extends Error {
  /** From the API's error body (or the HTTP status when the body is not one). */
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = "ApiRequestError";
  }

  /** The error as the API's JSON body. */
  body(): ApiErrorBody {
    const error: ApiErrorBody["error"] = {
      status: this.status,
      code: this.code,
      message: this.message,
    };
    if (this.field !== undefined) error.field = this.field;
    return { error };
  }
}

/** The appliance could not be reached or did not answer in time. */
export class NetworkError extends Error {
  /** `message` names the URL and the cause. */
  constructor(message: string) {
    super(message);
    this.name = "NetworkError";
  }
}

/**
 * The base URL of an appliance from what a user typed: `https://` is added
 * when no scheme is given, a trailing slash dropped. Throws a UsageError
 * when it is not an http(s) URL.
 */
export function normalizeUrl(input: string): string {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(input) ? input : `https://${input}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`Cannot use URL "${input}": it is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`Cannot use URL "${input}": only http and https are supported`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

/** What to do about a certificate the system's roots do not know. */
function tlsHint(e: unknown, pinned: Deno.HttpClient | undefined): string {
  const text = `${messageOf(e)} ${(e as { cause?: unknown })?.cause ?? ""}`;
  if (pinned !== undefined || !/certificate|UnknownIssuer|tls/i.test(text)) return "";
  return " (the certificate is not trusted: pass --fingerprint SHA256 as the appliance printed " +
    "it at start, or --ca FILE)";
}

/** Options of one request. */
export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  headers?: Record<string, string>;
}

function isErrorBody(x: unknown): x is ApiErrorBody {
  const e = (x as { error?: { message?: unknown; code?: unknown } } | null)?.error;
  return typeof e?.message === "string" && typeof e?.code === "string";
}

/** The error a non-2xx response stands for. */
async function errorOf(res: Response): Promise<ApiRequestError> {
  const text = await res.text().catch(() => "");
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(text);
  } catch { /* not JSON: reported by status below */ }
  if (isErrorBody(parsed)) {
    const e = parsed.error;
    return new ApiRequestError(res.status, e.code, e.message, e.field);
  }
  return new ApiRequestError(res.status, "http_error", `HTTP ${res.status} ${res.statusText}`);
}

/** Talks to one appliance with one set of credentials. */
export class ApiClient {
  /** `baseUrl` as from `normalizeUrl`; `cancel` (Ctrl-C) aborts every request. */
  constructor(
    readonly baseUrl: string,
    readonly creds: Credentials = null,
    readonly timeoutMs = DEFAULT_TIMEOUT_MS,
    readonly cancel?: AbortSignal,
    /** Whom TLS trusts (see trust.ts); undefined: the system's roots. */
    readonly httpClient?: Deno.HttpClient,
  ) {}

  /** A client of the same appliance with other credentials. */
  with(creds: Credentials): ApiClient {
    return new ApiClient(this.baseUrl, creds, this.timeoutMs, this.cancel, this.httpClient);
  }

  /** The request's signal: the timeout, and Ctrl-C when there is a `cancel` signal. */
  #signal(): AbortSignal {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    return this.cancel === undefined ? timeout : AbortSignal.any([timeout, this.cancel]);
  }

  #url(path: string, query: RequestOptions["query"] = {}): string {
    const url = new URL(`${this.baseUrl}${API_BASE}${path}`);
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    return url.href;
  }

  #headers(method: string, o: RequestOptions): Headers {
    const h = new Headers(o.headers);
    h.set("accept", h.get("accept") ?? "application/json");
    if (o.body !== undefined) h.set("content-type", "application/json");
    if (this.creds?.kind === "token") h.set("authorization", `Bearer ${this.creds.token}`);
    if (this.creds?.kind === "cookie") {
      h.set("cookie", `${SESSION_COOKIE}=${this.creds.cookie}`);
      if (method !== "GET") h.set(CSRF_HEADER, this.creds.csrf);
    }
    return h;
  }

  /** Sends a request; resolves to the response when its status is 2xx. */
  async send(
    method: string,
    path: string,
    o: RequestOptions = {},
    signal: AbortSignal = this.#signal(),
  ): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(this.#url(path, o.query), {
        method,
        headers: this.#headers(method, o),
        body: o.body === undefined ? undefined : JSON.stringify(o.body),
        signal,
        client: this.httpClient,
      });
    } catch (e) {
      if (this.cancel?.aborted) throw new NetworkError("Interrupted");
      const why = signal.aborted && signal.reason instanceof DOMException &&
          signal.reason.name === "TimeoutError"
        ? `no answer within ${this.timeoutMs / 1000} s`
        : messageOf(e);
      throw new NetworkError(`Cannot reach ${this.baseUrl}: ${why}${tlsHint(e, this.httpClient)}`);
    }
    if (!res.ok) throw await errorOf(res);
    return res;
  }

  /** Sends a request and parses the JSON answer (undefined for 204). */
  async request<T>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, path, o);
    const text = await res.text();
    return (text === "" ? undefined : JSON.parse(text)) as T;
  }

  /** GET `path` with `query`. */
  get<T>(path: string, query?: RequestOptions["query"]): Promise<T> {
    return this.request<T>("GET", path, { query });
  }

  /** POST `body` to `path`. */
  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>("POST", path, { body });
  }

  /**
   * Signs in with password and TOTP code (a cookie session), creates a bearer
   * token from it and ends the cookie session again. Returns the token.
   */
  async createToken(
    username: string,
    password: string,
    code: string,
    ttlDays?: number,
  ): Promise<{ session: Session; token: CreatedToken }> {
    const res = await this.send("POST", "/auth/login", { body: { username, password, code } });
    const session = await res.json() as Session;
    const cookies = res.headers.getSetCookie().join("; ");
    const m = new RegExp(`${SESSION_COOKIE}=([0-9a-f]{64})`).exec(cookies);
    if (m === null || session.csrfToken === undefined) {
      throw new ApiRequestError(res.status, "no_session", "Signed in, but got no session cookie");
    }
    const cookie = this.with({ kind: "cookie", cookie: m[1], csrf: session.csrfToken });
    try {
      const body = ttlDays === undefined ? {} : { ttlDays };
      return { session, token: await cookie.post<CreatedToken>("/auth/tokens", body) };
    } finally {
      await cookie.post("/auth/logout").catch(() => {});
    }
  }
}
