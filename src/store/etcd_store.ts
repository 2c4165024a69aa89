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
 */
import { EtcdKv } from "./etcd_kv.ts";
import { storeOver } from "./_repos.ts";
import type { OpenStoreOptions } from "./kv_store.ts";
import type { Store } from "./mod.ts";
import { migrate, MIGRATIONS } from "./schema.ts";
import { loadKey, loadOrCreateKey, type SecretBox } from "./secret_box.ts";
import { StoreError } from "./errors.ts";

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
  });
  try {
    const box = await clusterKey(kv, options.keyFile ?? `${target.path}.key`);
    await migrate(kv, options.migrations ?? MIGRATIONS);
    return storeOver(kv, box, options, {
      onChange: (cb) => kv.onChange(cb),
      health: () => kv.health(),
      close: () => kv.close(),
    });
  } catch (err) {
    kv.close();
    throw err;
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
