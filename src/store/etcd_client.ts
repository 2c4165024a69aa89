/**
 * A client of etcd's v3 JSON gateway (grpc-gateway, served on every member's
 * client URL): `POST /v3/kv/range`, `/v3/kv/txn`, `/v3/lease/grant`,
 * `/v3/auth/authenticate`, and `/v3/watch` as a stream of newline-separated
 * JSON messages. Keys and values travel base64, 64-bit integers as decimal
 * strings, and fields at their zero value are left out of the answers.
 *
 * Why the gateway and not the npm `etcd3` package: `etcd3@1.1.2` does work
 * under Deno here (put, get, a prefix watch, a lease and a txn were checked
 * against etcd 3.4), but it brings some thirty packages (@grpc/grpc-js, two
 * protobufjs with install scripts, cockatiel, yargs) and its own retry and
 * circuit-breaker policy decides when a member counts as down. Degraded mode
 * needs that decision here, bounded by our own request timeout, and the
 * gateway is the same v3 API over `fetch` with no dependency at all.
 *
 * Failover: requests go to the endpoint that answered last; a connection
 * failure, a timeout or an "unavailable" answer moves to the next one, and
 * only when every endpoint kept failing for the retry budget (5 s: a leader
 * election is waited out; at once when every member refuses the connection)
 * does a call throw `EtcdUnreachableError`.
 * A txn that timed out may still have committed, and the next member gets it
 * again (so may one whose connection dropped before the answer: `fetch`
 * itself sends it again): unchecked puts and deletes repeat the same effect,
 * and a checked txn then fails its compare against its own first commit,
 * which `EtcdKv` tells from another node's by reading its keys back.
 */

/** TLS material for the members' client URLs, PEM text. */
export interface EtcdTls {
  /** CA certificate(s) the members' certificates chain to. */
  ca: string;
  /** Client certificate and key, for members that require client certificates. */
  cert?: string;
  key?: string;
}

/** Options of `EtcdClient`. */
export interface EtcdClientOptions {
  /** Client URLs of the members, e.g. `http://127.0.0.1:2379`. */
  endpoints: readonly string[];
  tls?: EtcdTls;
  /** etcd authentication (`etcdctl user add`); none when absent. */
  username?: string;
  password?: string;
  /** One request's bound before the next endpoint is tried; default 2000 ms. */
  requestTimeoutMs?: number;
  /**
   * How long a call keeps going round the endpoints while none answers, so
   * that a leader election (one member killed: about 1-2 s with etcd's
   * default election timeout) is waited out rather than reported; default
   * 5000 ms. A round in which every member refused the connection ends it at once.
   */
  retryBudgetMs?: number;
}

/** No endpoint answered. */
export class EtcdUnreachableError extends Error {
  /** `detail` is the last endpoint's failure. */
  constructor(detail: string) {
    super(`etcd is unreachable: ${detail}`);
    this.name = "EtcdUnreachableError";
  }
}

/** etcd answered with an error (a gRPC status code and its message). */
export class EtcdRequestError extends Error {
  /** `code` is the gRPC status, e.g. 5 (not found), 3 (invalid argument). */
  constructor(readonly code: number, message: string) {
    super(`etcd: ${message}`);
    this.name = "EtcdRequestError";
  }
}

/** gRPC codes that mean "this member cannot serve now": try another. */
const RETRY_ELSEWHERE = new Set([4, 14]); // DEADLINE_EXCEEDED, UNAVAILABLE
const UNAUTHENTICATED = 16;
/** The pause between two rounds over every endpoint. */
const ROUND_PAUSE_MS = 200;

/** base64 of bytes. */
export function b64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** Bytes of base64 text (absent: empty). */
export function unb64(text: string | undefined): Uint8Array {
  if (text === undefined || text === "") return new Uint8Array(0);
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** A key-value as the gateway returns it. */
export interface EtcdKeyValue {
  key: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
  version?: string;
  lease?: string;
}

/** The response header every answer carries. */
export interface EtcdHeader {
  revision?: string;
}

/** An answer of `/v3/kv/range`. */
export interface EtcdRangeResponse {
  header?: EtcdHeader;
  kvs?: EtcdKeyValue[];
  more?: boolean;
  count?: string;
}

/** One message of a `/v3/watch` stream. */
export interface EtcdWatchResult {
  header?: EtcdHeader;
  created?: boolean;
  canceled?: boolean;
  compact_revision?: string;
  cancel_reason?: string;
  events?: { type?: "PUT" | "DELETE"; kv: EtcdKeyValue }[];
}

/** A client of several members; see the module comment. */
export class EtcdClient {
  #current = 0;
  #token: string | null = null;
  readonly #endpoints: string[];
  readonly #timeoutMs: number;
  readonly #budgetMs: number;
  readonly #http: Deno.HttpClient | undefined;

  /** A client of `options.endpoints`; nothing is sent until the first call. */
  constructor(private readonly options: EtcdClientOptions) {
    if (options.endpoints.length === 0) throw new TypeError("etcd: no endpoints");
    this.#endpoints = options.endpoints.map((e) => e.replace(/\/+$/, ""));
    this.#timeoutMs = options.requestTimeoutMs ?? 2000;
    this.#budgetMs = options.retryBudgetMs ?? 5000;
    const tls = options.tls;
    this.#http = tls === undefined ? undefined : Deno.createHttpClient({
      caCerts: [tls.ca],
      ...(tls.cert !== undefined && tls.key !== undefined ? { cert: tls.cert, key: tls.key } : {}),
    });
  }

  /** The endpoint requests go to now. */
  get endpoint(): string {
    return this.#endpoints[this.#current];
  }

  /**
   * POSTs `body` to `path`, failing over between endpoints, round after round
   * until one answers or the retry budget is spent; the answer's JSON.
   */
  async call<T>(path: string, body: unknown): Promise<T> {
    const giveUp = Date.now() + this.#budgetMs;
    let detail = "";
    for (;;) {
      // Whether a member is there at all (it answered "unavailable" or let the request time
      // out) rather than refusing the connection: only then can waiting help.
      let alive = false;
      for (let tried = 0; tried < this.#endpoints.length; tried++) {
        const at = this.#current;
        try {
          return await this.#once<T>(this.#endpoints[at], path, body, true);
        } catch (err) {
          if (err instanceof EtcdRequestError && !RETRY_ELSEWHERE.has(err.code)) throw err;
          alive ||= !(err instanceof TypeError);
          detail = `${this.#endpoints[at]}: ${(err as Error).message}`;
          if (this.#current === at) this.#current = (at + 1) % this.#endpoints.length;
        }
      }
      if (!alive || Date.now() + ROUND_PAUSE_MS >= giveUp) throw new EtcdUnreachableError(detail);
      await new Promise((r) => setTimeout(r, ROUND_PAUSE_MS));
    }
  }

  /**
   * Opens a watch with `create` (a WatchCreateRequest) on the current
   * endpoint and yields its messages until the stream ends, `signal` aborts
   * it or it breaks (then it throws). The first message must arrive within
   * the request timeout.
   */
  async *watch(create: unknown, signal: AbortSignal): AsyncGenerator<EtcdWatchResult> {
    const base = this.endpoint;
    const opened = AbortSignal.timeout(this.#timeoutMs);
    const abort = new AbortController();
    const onAbort = () => abort.abort();
    signal.addEventListener("abort", onAbort);
    opened.addEventListener("abort", onAbort);
    try {
      const res = await this.#fetch(base, "/v3/watch", { create_request: create }, abort.signal);
      if (!res.ok || res.body === null) {
        const text = await res.text();
        throw new EtcdRequestError(0, `watch refused (${res.status}): ${text}`);
      }
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      let first = true;
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buf += value;
          let nl: number;
          while ((nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line === "") continue;
            const msg = JSON.parse(line) as { result?: EtcdWatchResult; error?: unknown };
            if (msg.result === undefined) {
              throw new EtcdRequestError(0, `watch failed: ${JSON.stringify(msg.error ?? msg)}`);
            }
            if (first) {
              opened.removeEventListener("abort", onAbort);
              first = false;
            }
            yield msg.result;
          }
        }
      } finally {
        await reader.cancel().catch(() => {});
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      opened.removeEventListener("abort", onAbort);
    }
  }

  /** Frees the TLS client, if any. */
  close(): void {
    this.#http?.close();
  }

  async #once<T>(base: string, path: string, body: unknown, mayAuth: boolean): Promise<T> {
    const res = await this.#fetch(base, path, body, AbortSignal.timeout(this.#timeoutMs));
    const text = await res.text();
    if (res.ok) return (text === "" ? {} : JSON.parse(text)) as T;
    let code = 0;
    let message = `HTTP ${res.status}: ${text}`;
    try {
      const e = JSON.parse(text) as { code?: number; message?: string; error?: string };
      code = e.code ?? 0;
      message = e.message ?? e.error ?? message;
    } catch { /* not JSON: keep the status line */ }
    if (code === UNAUTHENTICATED && mayAuth && this.options.username !== undefined) {
      this.#token = null; // an expired token: sign in again once
      return await this.#once<T>(base, path, body, false);
    }
    throw new EtcdRequestError(code, message);
  }

  async #fetch(base: string, path: string, body: unknown, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.options.username !== undefined && path !== "/v3/auth/authenticate") {
      this.#token ??= await this.#authenticate(base);
      headers.authorization = this.#token;
    }
    return await fetch(`${base}${path}`, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      signal,
      ...(this.#http === undefined ? {} : { client: this.#http }),
    });
  }

  async #authenticate(base: string): Promise<string> {
    const { token } = await this.#once<{ token: string }>(base, "/v3/auth/authenticate", {
      name: this.options.username,
      password: this.options.password ?? "",
    }, false);
    return token;
  }
}
