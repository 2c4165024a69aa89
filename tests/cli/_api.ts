/**
 * A real management API for the shell's tests, in this process: createApp
 * over a real KV store in a temp dir (bootstrapped with the default config:
 * user alice, four forwards, an administrator), a fake data plane in memory
 * that reports one unlock, served with Deno.serve on 127.0.0.1, port 0.
 */
import { type Clock, ManualClock, systemClock } from "../../src/clock.ts";
import { createApp } from "../../src/api/app.ts";
import { type BootstrapAdmin, bootstrapStore, networkLayout } from "../../src/api/bootstrap.ts";
import { syncDatapath } from "../../src/api/sync.ts";
import { defaultConfig } from "../../src/config/defaults.ts";
import type { DatapathApi } from "../../src/datapath/control.ts";
import { newCounters } from "../../src/datapath/counters.ts";
import type {
  FlowRecord,
  RuleIdName,
  UnlockRecord,
  UplinkStatus,
} from "../../src/datapath/messages.ts";
import type { Config } from "../../src/config/types.ts";
import { totpCode } from "../../src/knock/totp.ts";
import { Logger } from "../../src/log/logger.ts";
import { openStore } from "../../src/store/kv_store.ts";
import type { Store } from "../../src/store/mod.ts";
import { ApiClient } from "../../src/cli/shell/api_client.ts";

/** The unlock the fake data plane reports. */
export const UNLOCKED_IP = "203.0.113.10";

/** An in-memory data plane: one unlock, a flow, conntrack figures, uplink health. */
export class FakeDatapath implements DatapathApi {
  readonly counters: Float64Array = newCounters(false);
  readonly unlockTable = new Map<string, UnlockRecord & { wanAddress?: string }>();
  flowTable: FlowRecord[] = [];
  /** What the `uplinks` query answers; null: it fails. */
  uplinkTable: UplinkStatus[] | null = null;

  /** The uplinks' health. */
  uplinks(): Promise<UplinkStatus[]> {
    if (this.uplinkTable === null) return Promise.reject(new Error("no uplinks query"));
    return Promise.resolve(structuredClone(this.uplinkTable));
  }

  /** Ignored: the fake forwards nothing. */
  setRules(): void {}
  /** Ignored. */
  setUsers(): void {}
  /** Ignored. */
  setSettings(): void {}
  /** Removes `ip` from the unlock table. */
  revoke(ip: string): Promise<UnlockRecord | null> {
    const u = this.unlockTable.get(ip) ?? null;
    this.unlockTable.delete(ip);
    return Promise.resolve(u);
  }
  /** The unlock table. */
  unlocks(): Promise<UnlockRecord[]> {
    return Promise.resolve([...this.unlockTable.values()]);
  }
  /** The flow table, cut to `limit`. */
  flows(limit = 1000): Promise<FlowRecord[]> {
    return Promise.resolve(this.flowTable.slice(0, limit));
  }
  /** Conntrack figures. */
  conntrack(): Promise<Record<string, number>> {
    return Promise.resolve({ size: this.flowTable.length, capacity: 1024 });
  }
  /** No rules are counted. */
  ruleIds(): Promise<RuleIdName[]> {
    return Promise.resolve([]);
  }
  /** Adds an unlock as a knock would. */
  unlock(ip: string, user: string, at: number): void {
    this.unlockTable.set(ip, {
      ip,
      user,
      unlockedAt: at,
      lastSeen: at + 5_000,
      expiresAt: at + 3_600_000,
      drift: -1,
      flows: 2,
      bytes: 1536,
      wanAddress: "198.51.100.1",
    });
  }
}

/** A running test API. */
export interface TestApi {
  url: string;
  store: Store;
  datapath: FakeDatapath;
  logger: Logger;
  clock: Clock;
  admin: BootstrapAdmin;
  /** The TOTP code of `secret` now (a manual clock first moves on a step: codes work once). */
  code(secret: string): string;
  /** A fresh bearer token of the administrator. */
  adminToken(): Promise<string>;
  /** Stops the server and removes the store. */
  close(): Promise<void>;
}

/**
 * Starts the API; `manual` uses a clock that moves only a step per `code()`;
 * `config` is the configuration file's contents (default `defaultConfig()`).
 */
export async function startApi(
  opts: { manual?: boolean; config?: Config } = {},
): Promise<TestApi> {
  const dir = await Deno.makeTempDir({ prefix: "kgt-shell-" });
  const clock = opts.manual ? new ManualClock(Date.UTC(2026, 0, 1)) : systemClock;
  const config = opts.config ?? defaultConfig();
  const store = await openStore(`${dir}/store.kv`, { clock, network: networkLayout(config) });
  const admin = (await bootstrapStore(store, config))!;
  const datapath = new FakeDatapath();
  await syncDatapath(store, datapath, config);
  datapath.unlock(UNLOCKED_IP, "alice", clock.now() - 60_000);
  const logger = new Logger({ clock });
  const app = createApp({
    store,
    datapath,
    logger,
    clock,
    config,
    clockHealth: () => Promise.resolve({ synchronised: true, detail: "test", now: clock.now() }),
    onChange: () => syncDatapath(store, datapath, config),
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
  const url = `http://127.0.0.1:${server.addr.port}`;
  const code = (secret: string) => {
    if (clock instanceof ManualClock) clock.advance(30_000);
    return totpCode(secret, Math.floor(clock.now() / 1000));
  };
  return {
    url,
    store,
    datapath,
    logger,
    clock,
    admin,
    code,
    adminToken: async () => {
      const r = await new ApiClient(url).createToken(
        admin.name,
        admin.password,
        code(admin.totpSecret),
      );
      return r.token.token;
    },
    close: async () => {
      await server.shutdown();
      store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
