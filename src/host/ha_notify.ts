/**
 * keepalived telling the appliance of its VRRP transitions (an HA pair):
 * HTTP on a Unix socket inside a directory of mode 0700 beside the store, so
 * the kernel's file permissions authenticate the caller (only the
 * appliance's user, root, may connect), as conntrackd's control socket does.
 * No secret travels and nothing listens on a network. keepalived's
 * `notify_master`, `notify_backup` and `notify_fault` run
 * `curl --unix-socket PATH -X POST http://knockgate/vrrp/STATE` (see
 * `applianceSocket` in keepalived.ts).
 */

/** The VRRP states keepalived reports. */
export const VRRP_STATES = ["master", "backup", "fault"] as const;
export type VrrpState = typeof VRRP_STATES[number];

/** Linux's sun_path: 108 bytes with the terminating NUL. */
const SUN_PATH_MAX = 107;

/** The notification socket of the store at `storePath`, or null for a store in memory. */
export function haSocketPath(storePath: string): string | null {
  return storePath === ":memory:" ? null : `${storePath}.ha/notify.sock`;
}

/** The request path keepalived's hook posts to for `state`. */
export function vrrpRequestPath(state: VrrpState): string {
  return `/vrrp/${state}`;
}

/** A listening notification socket. */
export interface HaNotifyServer {
  readonly path: string;
  close(): Promise<void>;
}

/**
 * Listens on `path` (its directory made 0700 and checked to be ours; a stale
 * socket of an earlier run replaced). `onState` runs for each `POST
 * /vrrp/STATE` and its text is the answer (200); it runs one at a time, in
 * arrival order. Throws (start time) when the directory is not a private
 * one of ours or the path is too long for a Unix socket.
 */
export async function serveHaNotify(
  path: string,
  onState: (state: VrrpState) => Promise<string>,
): Promise<HaNotifyServer> {
  if (new TextEncoder().encode(path).length > SUN_PATH_MAX) {
    throw new Error(`Cannot listen on ${path}: longer than a Unix socket path may be (107 bytes)`);
  }
  const dir = path.slice(0, path.lastIndexOf("/")) || "/";
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await Deno.lstat(dir);
  if (!info.isDirectory || (info.uid !== null && info.uid !== Deno.uid())) {
    throw new Error(`Cannot listen on ${path}: ${dir} is not a directory of this user`);
  }
  await Deno.chmod(dir, 0o700); // the umask filters mkdir's mode; make it exactly 0700
  await Deno.remove(path).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
  let queue = Promise.resolve();
  const server = Deno.serve({ path, onListen: () => {} }, async (req) => {
    const state = VRRP_STATES.find((s) => new URL(req.url).pathname === vrrpRequestPath(s));
    if (!state) return new Response("not found\n", { status: 404 });
    if (req.method !== "POST") return new Response("use POST\n", { status: 405 });
    const answer = queue.then(() => onState(state));
    queue = answer.then(() => {}, () => {});
    try {
      return new Response(`${await answer}\n`);
    } catch (e) {
      return new Response(`${(e as Error).message}\n`, { status: 500 });
    }
  });
  return {
    path,
    close: async () => {
      await server.shutdown();
      await Deno.remove(path).catch(() => {});
    },
  };
}
