/**
 * Schema versions of the KV file. `["meta","schema"]` holds the version
 * number; `MIGRATIONS` is the ordered list that brings an older file up to
 * date. A migration's `up` must be safe to run again: the marker is bumped
 * after it, so a crash in between re-runs it on the next start.
 */
import type { StoreKv } from "./store_kv.ts";

/** Key holding the schema version number. */
export const SCHEMA_KEY: Deno.KvKey = ["meta", "schema"];

/** One step from version `version - 1` to `version`. */
export interface Migration {
  /** The version this migration produces; versions count up from 1. */
  version: number;
  /** What the step does, for the log. */
  description: string;
  /** Rewrites the data; must be idempotent (see module doc). */
  up(kv: StoreKv): Promise<void>;
}

/** The migrations of this release, in order. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "initial schema: the version marker only",
    up: () => Promise.resolve(),
  },
];

/** The version a fully migrated file has. */
export function latestVersion(migrations: readonly Migration[] = MIGRATIONS): number {
  return migrations.length === 0 ? 0 : migrations[migrations.length - 1].version;
}

/** Throws unless the list counts up 1, 2, 3, ... without gaps. */
function checkOrder(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(
        `Cannot migrate: migration #${i} has version ${m.version}, expected ${i + 1}`,
      );
    }
  });
}

/**
 * Runs every migration newer than the stored version, in order, and returns
 * the versions it ran. Refuses a file written by a newer release.
 */
export async function migrate(
  kv: StoreKv,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<number[]> {
  checkOrder(migrations);
  const ran: number[] = [];
  for (;;) {
    const marker = await kv.get<number>(SCHEMA_KEY);
    const current = marker.value ?? 0;
    if (current > latestVersion(migrations)) {
      throw new Error(
        `Cannot open store: schema version ${current} is newer than this release (${
          latestVersion(migrations)
        })`,
      );
    }
    const next = migrations[current];
    if (next === undefined) return ran;
    await next.up(kv);
    // The check makes a concurrent opener's bump fail instead of skipping a step.
    const res = await kv.atomic().check(marker).set(SCHEMA_KEY, next.version).commit();
    if (res.ok) ran.push(next.version);
  }
}
