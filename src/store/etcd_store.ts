/**
 * The store on an etcd cluster shared by several appliances, as a
 * configuration's `store` section names it (`backend: "etcd"`; `openStore`
 * picks it). `path` still names this node's local files: the appliance key
 * `<path>.key`, and beside it the management certificate and the flow
 * snapshot; no KV file is opened.
 *
 * The key: TOTP secrets stay sealed with the appliance key (`secret_box.ts`),
 * so every node of a cluster must hold the same key file. The first node
 * creates it and records its id at `["meta","key-id"]`; a node opened with
 * a missing key file on a cluster that already has one refuses to start
 * (copy the file from an enrolled node, see docs/cluster.md), and one with
 * a different key refuses too, instead of sealing secrets no other node can open.
 *
 * Starting while no member answers (`startUnreachable`): a node that holds
 * its key file opens at once, with nothing loaded: `health().loaded` is
 * false, every repository call throws `StoreUnavailableError` (the API's
 * 503) and no change is reported. When a member answers, the whole prefix
 * is listed, the key checked against the cluster's and the schema migrated;
 * then `ready` resolves and the store works (the composition root loads the
 * data plane then). `ready` rejects when the key check refuses the node. A
 * node without a key file (its first start) waits for a member instead: it
 * must learn whether the cluster has a key before it may make one.
 */
import { EtcdKv } from "./etcd_kv.ts";
import { storeOver } from "./_repos.ts";
import type { OpenStoreOptions } from "./kv_store.ts";
import type { Store } from "./mod.ts";
import { migrate, MIGRATIONS } from "./schema.ts";
import { loadKey, loadOrCreateKey, type SecretBox } from "./secret_box.ts";
import { StoreError, StoreUnavailableError } from "./errors.ts";
import type { StoreAtomic, StoreKv } from "./store_kv.ts";

/** TLS files of the etcd client connection (PEM paths). */
export interface EtcdTlsFiles {
  /** CA certificate the members' certificates chain to. */
  ca: string;
  /** Client certificate and key, when the members require client certificates. */
  cert?: string;
  key?: string;
}

/** The store on a KV file (the default). */
export interface KvStoreTarget {
  backend?: "kv";
  /** The KV file. */
  path: string;
}

/** The store on an etcd cluster. */
export interface EtcdStoreTarget {
  backend: "etcd";
  /** This node's local files: `<path>.key` is the appliance key; no KV file is opened. */
  path: string;
  /** Client URLs of the members, `http(s)://host:port`. */
  endpoints: readonly string[];
  /** Key prefix of this cluster's data, e.g. `/knockgate/`. */
  prefix: string;
  tls?: EtcdTlsFiles;
  username?: string;
  password?: string;
}

/** What a configuration's `store` section holds. */
export type StoreTarget = KvStoreTarget | EtcdStoreTarget;

/** Test and tuning knobs of an etcd store beyond the configuration. */
export interface EtcdStoreOptions extends OpenStoreOptions {
  /** One request's bound before the next member is tried; default 2000 ms. */
  requestTimeoutMs?: number;
  /** How often the current member is probed; default 1000 ms. */
  probeIntervalMs?: number;
  /** Open while no member answers (see the module comment); default false: throw. */
  startUnreachable?: boolean;
  /**
   * Called once when the store opens with no member answering: `detail` says
   * why; `waiting`: this node has no key file, so `open` waits for a member.
   */
  onUnreachable?: (detail: string, waiting: boolean) => void;
}

const KEY_ID: Deno.KvKey = ["meta", "key-id"];

async function readPem(path: string | undefined, what: string): Promise<string | undefined> {
  if (path === undefined) return undefined;
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    throw new StoreError(`Cannot open the etcd store: ${what} ${path}: ${(err as Error).message}`);
  }
}

/** Opens the store on the etcd cluster of `target` (see the module comment). */
export async function openEtcdStore(
  target: EtcdStoreTarget,
  options: EtcdStoreOptions = {},
): Promise<Store> {
  const tls = target.tls === undefined ? undefined : {
    ca: (await readPem(target.tls.ca, "CA file"))!,
    cert: await readPem(target.tls.cert, "certificate file"),
    key: await readPem(target.tls.key, "key file"),
  };
  const kv = await EtcdKv.open({
    endpoints: target.endpoints,
    prefix: target.prefix,
    ...(tls === undefined ? {} : { tls }),
    ...(target.username === undefined ? {} : { username: target.username }),
    ...(target.password === undefined ? {} : { password: target.password }),
    ...(options.requestTimeoutMs === undefined
      ? {}
      : { requestTimeoutMs: options.requestTimeoutMs }),
    ...(options.probeIntervalMs === undefined ? {} : { probeIntervalMs: options.probeIntervalMs }),
    openUnreachable: options.startUnreachable === true,
  });
  const keyPath = options.keyFile ?? `${target.path}.key`;
  try {
    if (kv.health().loaded !== true) {
      const keyed = await exists(keyPath);
      const why = `no etcd member of ${target.endpoints.join(", ")} answers`;
      options.onUnreachable?.(keyed ? why : `${why} and there is no key file "${keyPath}"`, !keyed);
      if (keyed) return await pendingStore(kv, keyPath, options);
      await kv.loaded();
    }
    const box = await clusterKey(kv, keyPath);
    await migrate(kv, options.migrations ?? MIGRATIONS);
    return storeOver(kv, box, options, {
      onChange: (cb) => kv.onChange(cb),
      health: () => kv.health(),
      close: () => kv.close(),
      ready: Promise.resolve(),
    });
  } catch (err) {
    kv.close();
    throw err;
  }
}

/** The store of a node started while no member answers; see the module comment. */
async function pendingStore(
  kv: EtcdKv,
  keyPath: string,
  options: EtcdStoreOptions,
): Promise<Store> {
  const box = await loadKey(keyPath);
  let open = false;
  const ready = (async () => {
    await kv.loaded();
    const checked = await clusterKey(kv, keyPath);
    if (checked.keyId !== box.keyId) {
      throw new StoreError(`Cannot open the etcd store: key file "${keyPath}" changed meanwhile`);
    }
    await migrate(kv, options.migrations ?? MIGRATIONS);
    open = true;
  })();
  ready.catch(() => {});
  return storeOver(new GatedKv(kv, () => open), box, options, {
    // The first listing reports every area before the store opens: `ready` stands for it.
    onChange: (cb) => kv.onChange((change) => open && cb(change)),
    health: () => ({ ...kv.health(), loaded: open }),
    close: () => kv.close(),
    ready,
  });
}

/** `kv` as the repositories see it: every call refused until `isOpen()`. */
class GatedKv implements StoreKv {
  constructor(private readonly kv: EtcdKv, private readonly isOpen: () => boolean) {}

  #check(): void {
    if (!this.isOpen()) {
      throw new StoreUnavailableError(
        "Cannot use the store: no etcd member has answered since this node started",
      );
    }
  }

  get<T = unknown>(key: Deno.KvKey): Promise<Deno.KvEntryMaybe<T>> {
    return Promise.resolve().then(() => (this.#check(), this.kv.get<T>(key)));
  }

  getMany<T extends readonly unknown[]>(
    keys: readonly [...{ [K in keyof T]: Deno.KvKey }],
  ): Promise<{ [K in keyof T]: Deno.KvEntryMaybe<T[K]> }> {
    return Promise.resolve().then(() => (this.#check(), this.kv.getMany<T>(keys)));
  }

  set(key: Deno.KvKey, value: unknown, o?: { expireIn?: number }): Promise<Deno.KvCommitResult> {
    return Promise.resolve().then(() => (this.#check(), this.kv.set(key, value, o)));
  }

  async *list<T = unknown>(
    selector: Deno.KvListSelector,
    options?: Deno.KvListOptions,
  ): AsyncIterableIterator<Deno.KvEntry<T>> {
    this.#check();
    yield* this.kv.list<T>(selector, options);
  }

  count(selector: Deno.KvListSelector): Promise<number> {
    return Promise.resolve().then(() => (this.#check(), this.kv.count(selector)));
  }

  atomic(): StoreAtomic {
    const op = this.kv.atomic();
    const commit = op.commit.bind(op);
    op.commit = () => Promise.resolve().then(() => (this.#check(), commit()));
    return op;
  }

  close(): void {
    this.kv.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** This node's key, checked against (or, on a new cluster, recorded as) the cluster's key id. */
async function clusterKey(kv: EtcdKv, keyPath: string): Promise<SecretBox> {
  const recorded = await kv.get<string>(KEY_ID);
  if (recorded.value !== null && !(await exists(keyPath))) {
    throw new StoreError(
      `Cannot open the etcd store: this node has no key file "${keyPath}" and the cluster's ` +
        `secrets are sealed with key ${recorded.value}: copy the key file from an enrolled node`,
    );
  }
  const box = recorded.value === null ? await loadOrCreateKey(keyPath) : await loadKey(keyPath);
  if (recorded.value === null) {
    const res = await kv.atomic().check(recorded).set(KEY_ID, box.keyId).commit();
    if (res.ok) return box;
    return await clusterKey(kv, keyPath); // another node recorded its key first: compare with it
  }
  if (recorded.value !== box.keyId) {
    throw new StoreError(
      `Cannot open the etcd store: key file "${keyPath}" has id ${box.keyId}, the cluster's ` +
        `secrets are sealed with key ${recorded.value}: copy the key file from an enrolled node`,
    );
  }
  return box;
}
