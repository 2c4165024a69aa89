/** Test helper: loads `knock-vectors.json`, preferring the shared copy. */

/** One case of `knock-vectors.json`. */
export interface KnockVector {
  secret: string;
  unixTime: number;
  step: number;
  firstPort: number;
  length: number;
  totp: string;
  sequence: number[];
  note?: string;
}

const LOCAL = new URL("./testdata/knock_vectors.json", import.meta.url);
// The repo root is two levels above src/knock; the shared folder sits beside it.
const SHARED = new URL("../../../shared/knock-vectors.json", import.meta.url);

async function readJson(url: URL): Promise<unknown | null> {
  try {
    return JSON.parse(await Deno.readTextFile(url));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * The vector cases. Uses `../shared/knock-vectors.json` when present and
 * checks the local copy in `testdata/` equals it; else the local copy.
 */
export async function loadVectors(): Promise<KnockVector[]> {
  const local = await readJson(LOCAL);
  const shared = await readJson(SHARED);
  if (shared !== null && JSON.stringify(shared) !== JSON.stringify(local)) {
    throw new Error(`Cannot load knock vectors: ${LOCAL.pathname} differs from ${SHARED.pathname}`);
  }
  const doc = (shared ?? local) as { protocol: string; cases: KnockVector[] } | null;
  if (doc === null || doc.protocol !== "portknock/v1") {
    throw new Error("Cannot load knock vectors: no portknock/v1 vector file found");
  }
  return doc.cases;
}
