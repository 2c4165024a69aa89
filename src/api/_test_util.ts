/**
 * Test harness: the API over a real KV store in a temp dir, a fake data
 * plane in memory, a manual clock, and clients that sign in like a browser
 * (cookie + CSRF header) or a script (bearer token).
 */
import { loadOrCreateTls } from "../host/tls.ts";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { ManualClock } from "../clock.ts";
import { DEFAULT_CONFIG_INPUT, defaultConfig } from "../config/defaults.ts";
import { parseConfig } from "../config/load.ts";
import type { Config } from "../config/types.ts";
import type { DatapathApi } from "../datapath/control.ts";
import { newCounters } from "../datapath/counters.ts";
import type {
  DatapathSettings,
  FlowRecord,
  KnockStateRecord,
  KnockUser,
  RuleIdName,
  UnlockRecord,
  UplinkStatus,
} from "../datapath/messages.ts";
import { totpCode } from "../knock/totp.ts";
import { Logger } from "../log/logger.ts";
import type { OpenPortsRule, PortForwardRule } from "../nat/rule.ts";
import { openStore } from "../store/kv_store.ts";
import type { StoreTarget } from "../store/etcd_store.ts";
import type { Store } from "../store/mod.ts";
import { type AppOptions, createApp } from "./app.ts";
import { SESSION_COOKIE } from "./auth.ts";
import { type BootstrapAdmin, bootstrapStore, networkLayout } from "./bootstrap.ts";
import { syncDatapath } from "./sync.ts";
import type { AppEnv, ChangeKind, TlsState } from "./types.ts";

/** 2026-01-01T00:00:00Z. */
export const T0 = Date.UTC(2026, 0, 1);

/**
 * The default configuration with two uplinks: `isp-a` (wan0, 198.51.100.1
 * and .2 in a /26, the management uplink) and `isp-b` (wan1, 198.51.100.65),
 * masquerade preferring isp-b.
 */
export function twoUplinkConfig(): Config {
  return parseConfig(
    JSON.stringify({
      ...DEFAULT_CONFIG_INPUT,
      wan: [
        {
          name: "isp-a",
          interface: "wan0",
          addresses: ["198.51.100.1/26", "198.51.100.2/26"],
          gateway: "198.51.100.62",
        },
        {
          name: "isp-b",
          interface: "wan1",
          addresses: ["198.51.100.65/26"],
          gateway: "198.51.100.126",
        },
      ],
      masquerade: { uplinks: ["isp-b", "isp-a"] },
      management: { ...DEFAULT_CONFIG_INPUT.management, uplinks: ["isp-a"] },
    }),
    "<two-uplink test config>",
  );
}

/**
 * The default configuration, dual-stack: IPv6 on (or written but off), the
 * LAN 2001:db8:192::1 in 2001:db8:192::/64, the uplink's 2001:db8:198::1/64.
 */
export function dualStackConfig(enabled = true): Config {
  return parseConfig(
    JSON.stringify({
      ...DEFAULT_CONFIG_INPUT,
      wan: [{
        name: "wan",
        interface: "wan0",
        addresses: ["198.51.100.1/24"],
        addresses6: ["2001:db8:198::1/64"],
      }],
      ipv6: { enabled, lan: { address: "2001:db8:192::1", network: "2001:db8:192::/64" } },
    }),
    "<dual-stack test config>",
  );
}

/**
 * Two dual-stack uplinks, each with a gateway6 (isp-a's link-local fe80::1 on wan0, isp-b's
 * 2001:db8:b::fe), masquerade preferring isp-a.
 */
export function dualStackTwoUplinkConfig(): Config {
  return parseConfig(
    JSON.stringify({
      ...DEFAULT_CONFIG_INPUT,
      wan: [
        {
          name: "isp-a",
          interface: "wan0",
          addresses: ["198.51.100.1/26"],
          addresses6: ["2001:db8:a::1/64"],
          gateway: "198.51.100.62",
          gateway6: "fe80::1",
        },
        {
          name: "isp-b",
          interface: "wan1",
          addresses: ["198.51.100.65/26"],
          addresses6: ["2001:db8:b::1/64"],
          gateway: "198.51.100.126",
          gateway6: "2001:db8:b::fe",
        },
      ],
      masquerade: { uplinks: ["isp-a", "isp-b"] },
      ipv6: { enabled: true, lan: { address: "2001:db8:192::1", network: "2001:db8:192::/64" } },
    }),
    "<dual-stack two-uplink test config>",
  );
}

/** `twoUplinkStatus` with IPv6 probes on both (`dualStackTwoUplinkConfig`); isp-a's as `aUp`. */
export function dualStackTwoUplinkStatus(aUp: boolean): UplinkStatus[] {
  const ipv6 = (up: boolean, target: string) => ({
    up,
    target,
    sent: 10,
    received: up ? 10 : 6,
    lastRttMs: up ? 0.3 : null,
    changedAt: up ? 0 : T0 + 1_000,
  });
  return twoUplinkStatus().map((s, i) => ({
    ...s,
    ipv6: i === 0 ? ipv6(aUp, "fe80::1") : ipv6(true, "2001:db8:b::fe"),
  }));
}

/** The health the fake data plane reports for `twoUplinkConfig`: isp-a down, isp-b masquerading. */
export function twoUplinkStatus(): UplinkStatus[] {
  return [
    {
      name: "isp-a",
      up: false,
      probing: true,
      target: "198.51.100.62",
      sent: 12,
      received: 9,
      lastRttMs: null,
      changedAt: T0 + 5_000,
      masquerade: false,
    },
    {
      name: "isp-b",
      up: true,
      probing: true,
      target: "198.51.100.126",
      sent: 12,
      received: 12,
      lastRttMs: 0.4,
      changedAt: 0,
      masquerade: true,
    },
  ];
}

/** An in-memory `DatapathApi` recording what it was told. */
export class FakeDatapath implements DatapathApi {
  readonly counters: Float64Array = newCounters(false);
  rules: { forwards: PortForwardRule[]; openPorts: OpenPortsRule[] } | null = null;
  users: KnockUser[] | null = null;
  settings: DatapathSettings | null = null;
  readonly unlockTable = new Map<string, UnlockRecord>();
  /** Who revoked each IP (the `by` the data plane names in `unlock-revoked`). */
  readonly revokedBy = new Map<string, string>();
  flowTable: FlowRecord[] = [];
  conntrackStats: Record<string, number> = { size: 0, capacity: 1024 };
  /** The rules by stable id (what the per-rule counters are named by). */
  ruleIdTable: RuleIdName[] = [];
  /** Number of set* calls, for "was it synced" checks. */
  pushes = 0;
  /** What the `uplinks` query answers; null: the query fails (a data plane that cannot tell). */
  uplinkTable: UplinkStatus[] | null = null;

  /** The uplinks' health. */
  uplinks(): Promise<UplinkStatus[]> {
    if (this.uplinkTable === null) return Promise.reject(new Error("no uplinks query"));
    return Promise.resolve(structuredClone(this.uplinkTable));
  }

  /** Records the rule set. */
  setRules(forwards: PortForwardRule[], openPorts: OpenPortsRule[]): void {
    this.rules = structuredClone({ forwards, openPorts });
    this.pushes++;
  }
  /** Records the users. */
  setUsers(users: KnockUser[]): void {
    this.users = structuredClone(users);
    this.pushes++;
  }
  /** Records the settings. */
  setSettings(settings: DatapathSettings): void {
    this.settings = structuredClone(settings);
    this.pushes++;
  }
  /** Removes `ip` from the unlock table. */
  revoke(ip: string, by = "operator"): Promise<UnlockRecord | null> {
    const u = this.unlockTable.get(ip) ?? null;
    if (u !== null) this.revokedBy.set(ip, by);
    this.unlockTable.delete(ip);
    return Promise.resolve(u);
  }
  /** Merges unlocks as the data plane does (see `Pipeline.mergeUnlocks`), counting the calls. */
  mergeUnlocks(records: UnlockRecord[]): void {
    this.merges++;
    for (const r of records) {
      const had = this.unlockTable.get(r.ip);
      if (had === undefined || had.user !== r.user) this.unlockTable.set(r.ip, { ...r });
      else this.unlockTable.set(r.ip, { ...had, lastSeen: Math.max(had.lastSeen, r.lastSeen) });
    }
  }
  /** Number of `mergeUnlocks` calls. */
  merges = 0;
  /** Every batch of knock state merged into the verifier, in order. */
  readonly knockStateMerges: KnockStateRecord[][] = [];
  /** Records the knock state a fleet merges into the verifier. */
  mergeKnockState(records: KnockStateRecord[]): void {
    this.knockStateMerges.push(structuredClone(records));
  }
  /** The unlock table. */
  unlocks(): Promise<UnlockRecord[]> {
    return Promise.resolve([...this.unlockTable.values()]);
  }
  /** The flow table, cut to `limit`. */
  flows(limit = 1000): Promise<FlowRecord[]> {
    return Promise.resolve(this.flowTable.slice(0, limit));
  }
  /** Conntrack statistics. */
  conntrack(): Promise<Record<string, number>> {
    return Promise.resolve({ ...this.conntrackStats });
  }
  /** The rules by stable id. */
  ruleIds(): Promise<RuleIdName[]> {
    return Promise.resolve(structuredClone(this.ruleIdTable));
  }
  /** Adds an unlock as a knock on `wanAddress` would. */
  unlock(ip: string, user: string, at: number, wanAddress = "198.51.100.1"): UnlockRecord {
    const u = {
      ip,
      user,
      unlockedAt: at,
      lastSeen: at,
      expiresAt: at + 3600_000,
      drift: 0,
      flows: 1,
      bytes: 100,
      wanAddress,
    };
    this.unlockTable.set(ip, u);
    return u;
  }
}

/** Credentials a client presents. */
export type Credentials =
  | { kind: "cookie"; cookie: string; csrf: string }
  | { kind: "token"; token: string }
  | null;

/** Options of one request. */
export interface RequestOptions {
  body?: unknown;
  /** A raw body string (sent as is, as JSON unless `headers` say otherwise). */
  raw?: string;
  headers?: Record<string, string>;
  /** Leave out the CSRF header of a cookie session. */
  noCsrf?: boolean;
}

/** Sends requests to the app as one client from one IP. */
export class Client {
  /** A client of `app` from `ip` with `creds`. */
  constructor(
    readonly app: OpenAPIHono<AppEnv>,
    readonly creds: Credentials,
    readonly ip = "192.0.2.50",
  ) {}

  /** Sends one request. */
  request(method: string, path: string, o: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { ...o.headers };
    const body = o.raw ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
    if (body !== undefined && headers["content-type"] === undefined) {
      headers["content-type"] = "application/json";
    }
    if (this.creds?.kind === "token") headers["authorization"] = `Bearer ${this.creds.token}`;
    if (this.creds?.kind === "cookie") {
      headers["cookie"] = `${SESSION_COOKIE}=${this.creds.cookie}`;
      if (!o.noCsrf) headers["x-csrf-token"] = this.creds.csrf;
    }
    const env = { remoteAddr: { hostname: this.ip, port: 40000, transport: "tcp" } };
    return Promise.resolve(
      this.app.request(`http://appliance.test${path}`, { method, headers, body }, env),
    );
  }

  /** Sends one request and parses the JSON answer. */
  async json(
    method: string,
    path: string,
    o: RequestOptions = {},
  ): Promise<{ status: number; body: Record<string, unknown>; res: Response }> {
    const res = await this.request(method, path, o);
    const text = await res.text();
    return { status: res.status, body: text === "" ? {} : JSON.parse(text), res };
  }
}

/** Everything a test gets. */
export interface Harness {
  app: OpenAPIHono<AppEnv>;
  store: Store;
  datapath: FakeDatapath;
  logger: Logger;
  clock: ManualClock;
  config: Config;
  admin: BootstrapAdmin;
  /** The listener's certificate state `/tls` shows (a real self-signed pair in the temp dir). */
  tls: TlsState;
  /** Changes pushed through `onChange`, in order. */
  changes: ChangeKind[];
  /** A client without credentials. */
  anon: Client;
  /** Signs in `name` with a fresh TOTP step; returns a cookie client. */
  login(name: string, password: string, secret: string, ip?: string): Promise<Client>;
  /** An administrator client with a bearer token. */
  adminClient(): Promise<Client>;
  /** Creates an enrolled user with `role` and returns a token client for it. */
  userClient(name: string, role: "administrator" | "operator" | "viewer"): Promise<Client>;
}

/** Runs `fn` against a fresh API and store; removes the store afterwards. */
export async function withApi(
  fn: (h: Harness) => Promise<void>,
  options: AppOptions = {},
  /** The configuration file's contents; default `defaultConfig()`. */
  config: Config = defaultConfig(),
  /** The store's target; default a KV file in the harness's temp dir. */
  storeAt: (dir: string) => string | StoreTarget = (dir) => `${dir}/store.kv`,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kgt-api-" });
  const clock = new ManualClock(T0);
  const store = await openStore(storeAt(dir), { clock, network: networkLayout(config) });
  try {
    const datapath = new FakeDatapath();
    const logger = new Logger({ clock });
    const changes: ChangeKind[] = [];
    // The default config seeds user "alice" (first port 41001) and four forwards.
    const admin = (await bootstrapStore(store, config))!;
    await syncDatapath(store, datapath, config);
    const made = await loadOrCreateTls({ storePath: `${dir}/store.kv`, ips: ["192.0.2.1"] });
    const tls: TlsState = {
      active: made.info,
      source: made.source,
      paths: made.paths,
      pending: null,
    };
    const app = createApp({
      store,
      datapath,
      logger,
      clock,
      config,
      tls,
      clockHealth: () => Promise.resolve({ synchronised: true, detail: "test", now: clock.now() }),
      onChange: async (what) => {
        changes.push(what);
        await syncDatapath(store, datapath, config);
      },
    }, options);
    const anon = new Client(app, null);
    const login = async (name: string, password: string, secret: string, ip?: string) => {
      clock.advance(30_000); // a fresh TOTP step: a code is accepted once
      const code = totpCode(secret, Math.floor(clock.now() / 1000));
      const r = await new Client(app, null, ip).json("POST", "/api/v1/auth/login", {
        body: { username: name, password, code },
      });
      if (r.status !== 200) throw new Error(`login ${name}: ${r.status} ${JSON.stringify(r.body)}`);
      const cookie = /kg_session=([0-9a-f]+)/.exec(r.res.headers.get("set-cookie") ?? "")![1];
      return new Client(app, { kind: "cookie", cookie, csrf: r.body.csrfToken as string }, ip);
    };
    const tokenFor = async (session: Client) => {
      const r = await session.json("POST", "/api/v1/auth/tokens", { body: {} });
      if (r.status !== 201) throw new Error(`token: ${r.status} ${JSON.stringify(r.body)}`);
      return new Client(app, { kind: "token", token: r.body.token as string });
    };
    const adminClient = async () =>
      await tokenFor(await login(admin.name, admin.password, admin.totpSecret));
    const userClient = async (name: string, role: "administrator" | "operator" | "viewer") => {
      const password = `${name}-password`;
      await store.users.createUser({ name, password, role }, "test");
      await store.users.confirmMfaEnrollment(name, "test");
      const { secret } = await store.users.getMfaSecrets(name);
      return await tokenFor(await login(name, password, secret));
    };
    await fn({
      app,
      store,
      datapath,
      logger,
      clock,
      config,
      admin,
      tls,
      changes,
      anon,
      login,
      adminClient,
      userClient,
    });
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The current TOTP code of `secret` at the harness clock. */
export function codeAt(secret: string, clock: ManualClock): string {
  return totpCode(secret, Math.floor(clock.now() / 1000));
}
