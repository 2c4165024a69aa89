/**
 * Opens the appliance's KV file: creates its directory, runs the schema
 * migrations, loads (or creates) the secret key, and wires the repositories.
 * Only the appliance process opens the file; tools go through the API.
 */
import { dirname } from "node:path";
import type { Clock } from "../clock.ts";
import type { NetworkLayout } from "../nat/rule_validate.ts";
import { storeOver } from "./_repos.ts";
import { type EtcdStoreOptions, openEtcdStore, type StoreTarget } from "./etcd_store.ts";
import type { Store } from "./mod.ts";
import { migrate, type Migration, MIGRATIONS } from "./schema.ts";
import { loadOrCreateKey, SecretBox } from "./secret_box.ts";

/** Options of `openStore`. */
export interface OpenStoreOptions {
  /** Secret key file; default `<path>.key`. A `:memory:` store without one gets a throw-away key. */
  keyFile?: string;
  /** Time source for records and expiry; default the system clock. */
  clock?: Clock;
  /** Migrations to run; default this release's `MIGRATIONS` (tests pass their own). */
  migrations?: readonly Migration[];
  /**
   * The addressing and management port rule and user writes are validated
   * against (from the configuration file); without it those checks are skipped.
   */
  network?: NetworkLayout;
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

/**
 * Loads the key; creates one only for a new KV file, since a fresh key for an
 * existing file would leave every stored TOTP secret undecryptable.
 */
async function openBox(path: string, keyFile: string | undefined): Promise<SecretBox> {
  if (keyFile === undefined && path === ":memory:") return await SecretBox.ephemeral();
  const keyPath = keyFile ?? `${path}.key`;
  if (path !== ":memory:" && await exists(path) && !(await exists(keyPath))) {
    throw new Error(
      `Cannot open store "${path}": its secret key file "${keyPath}" is missing; restore it ` +
        `(the stored TOTP secrets need it) or move the KV file away to start empty`,
    );
  }
  return await loadOrCreateKey(keyPath);
}

/** The KV file and SQLite's write-ahead log and shared-memory index beside it. */
export function storeFiles(path: string): string[] {
  return [path, `${path}-wal`, `${path}-shm`];
}

/**
 * Creates the KV file empty with mode 0600 when it is missing (SQLite gives
 * its -wal and -shm files the database file's mode) and narrows an existing
 * one: the directory's 0700 protects nothing when the directory already
 * existed, and Deno.openKv would create the file 0644.
 */
async function createPrivate(path: string): Promise<void> {
  try {
    (await Deno.open(path, { write: true, createNew: true, mode: 0o600 })).close();
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
  }
  await Deno.chmod(path, 0o600);
}

/** Makes every store file that exists mode 0600 (files from older releases may be 0644). */
async function narrowModes(path: string): Promise<void> {
  for (const file of storeFiles(path)) {
    try {
      await Deno.chmod(file, 0o600);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
}

/**
 * Opens the store `target` names: a KV file path (or ":memory:"), created if
 * needed, or a configuration's `store` section, which may name an etcd
 * cluster instead (`etcd_store.ts`).
 */
export async function openStore(
  target: string | StoreTarget,
  options: EtcdStoreOptions = {},
): Promise<Store> {
  if (typeof target !== "string" && target.backend === "etcd") {
    return await openEtcdStore(target, options);
  }
  return await openKvStore(typeof target === "string" ? target : target.path, options);
}

/** Opens (creating if needed) the KV file store at `path`, a file path or ":memory:". */
async function openKvStore(path: string, options: OpenStoreOptions): Promise<Store> {
  if (path !== ":memory:") await Deno.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const box = await openBox(path, options.keyFile);
  if (path !== ":memory:") await createPrivate(path);
  const kv = await Deno.openKv(path);
  try {
    if (path !== ":memory:") await narrowModes(path);
    await migrate(kv, options.migrations ?? MIGRATIONS);
  } catch (err) {
    kv.close();
    throw err;
  }
  return storeOver(kv, box, options, {
    onChange: () => () => {},
    health: () => ({ backend: "kv", connected: true, lastContactMs: Date.now(), revision: 0 }),
    close: () => kv.close(),
    ready: Promise.resolve(),
  });
}
