/**
 * API sessions and tokens. The id handed to the client is 32 random bytes in
 * hex; only its SHA-256 is stored, so a copy of the KV file grants no access.
 * Expiry is our own `expiresAt` (KV's `expireIn` is lazy and only tidies up).
 */
import type { Clock } from "../clock.ts";
import { randomHex, sha256Hex } from "./_ids.ts";
import type { AuditLog } from "./audit.ts";
import { ValidationError } from "./errors.ts";
import type { Role } from "./users.ts";
import type { StoreKv } from "./store_kv.ts";

/** A browser session (cookie) or an API token. */
export type SessionKind = "cookie" | "token";

/** A stored session. */
export interface SessionRecord {
  /** SHA-256 of the client's id, hex. */
  idHash: string;
  user: string;
  /** The role at creation; the API should still re-read the user. */
  role: Role;
  /** Double-submit token for state-changing cookie requests. */
  csrfToken: string;
  createdAt: number;
  expiresAt: number;
  kind: SessionKind;
}

/** Input of `createSession`. */
export interface NewSession {
  user: string;
  role: Role;
  kind: SessionKind;
  /** Lifetime in milliseconds. */
  ttlMs: number;
}

/** What `createSession` returns: the clear id, shown once. */
export interface CreatedSession {
  id: string;
  session: SessionRecord;
}

const BY_ID: Deno.KvKey = ["sessions"];
const BY_USER: Deno.KvKey = ["sessions-by-user"];
/** Extra time before KV may drop an expired record on its own. */
const KV_GRACE_MS = 60_000;

function idKey(idHash: string): Deno.KvKey {
  return [...BY_ID, idHash];
}

function userKey(user: string, idHash: string): Deno.KvKey {
  return [...BY_USER, user, idHash];
}

/** Repository of sessions. */
export class SessionRepo {
  /** Sessions in `kv`; creations and deletions recorded in `audit`. */
  constructor(
    private readonly kv: StoreKv,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  /** Creates a session for `input.user`, recorded as done by that user. */
  async createSession(input: NewSession): Promise<CreatedSession> {
    if (!Number.isInteger(input.ttlMs) || input.ttlMs <= 0) {
      throw new ValidationError(
        "ttlMs",
        `Cannot create session: ttl ${input.ttlMs} ms is not positive`,
      );
    }
    const id = randomHex(32);
    const now = this.clock.now();
    const session: SessionRecord = {
      idHash: await sha256Hex(id),
      user: input.user,
      role: input.role,
      csrfToken: randomHex(32),
      createdAt: now,
      expiresAt: now + input.ttlMs,
      kind: input.kind,
    };
    const expireIn = input.ttlMs + KV_GRACE_MS;
    const op = this.kv.atomic()
      .set(idKey(session.idHash), session, { expireIn })
      .set(userKey(session.user, session.idHash), session.expiresAt, { expireIn });
    this.audit.stage(op, {
      actor: input.user,
      action: "session.create",
      target: input.user,
      after: session,
    });
    await op.commit(); // random ids never collide: no checks, always commits
    return { id, session };
  }

  /** The live session with client id `id`, or null if unknown or expired. */
  async getSession(id: string): Promise<SessionRecord | null> {
    const s = (await this.kv.get<SessionRecord>(idKey(await sha256Hex(id)))).value;
    return s !== null && s.expiresAt > this.clock.now() ? s : null;
  }

  /** The live sessions and tokens of `user`. */
  async listSessions(user: string): Promise<SessionRecord[]> {
    const keys: Deno.KvKey[] = [];
    for await (const e of this.kv.list({ prefix: [...BY_USER, user] })) {
      keys.push(idKey(e.key[2] as string));
    }
    const out: SessionRecord[] = [];
    for (let i = 0; i < keys.length; i += 10) { // getMany takes at most 10 keys
      for (const e of await this.kv.getMany<SessionRecord[]>(keys.slice(i, i + 10))) {
        if (e.value !== null && e.value.expiresAt > this.clock.now()) out.push(e.value);
      }
    }
    return out;
  }

  /** Ends the session with client id `id`; false if there was none. */
  async deleteSession(id: string, actor: string): Promise<boolean> {
    return await this.#delete(await sha256Hex(id), actor);
  }

  /** Ends the session whose stored hash is `idHash` (token revocation from a list). */
  async deleteSessionByHash(idHash: string, actor: string): Promise<boolean> {
    return await this.#delete(idHash, actor);
  }

  /** Ends every session of `user` (e.g. after a password change); returns how many. */
  async deleteUserSessions(user: string, actor: string): Promise<number> {
    let n = 0;
    for await (const e of this.kv.list({ prefix: [...BY_USER, user] })) {
      if (await this.#delete(e.key[2] as string, actor)) n++;
    }
    return n;
  }

  /** Removes every expired session; returns how many. Not audited: nobody acted. */
  async purgeExpired(): Promise<number> {
    const now = this.clock.now();
    let n = 0;
    for await (const e of this.kv.list<SessionRecord>({ prefix: BY_ID })) {
      if (e.value.expiresAt > now) continue;
      const op = this.kv.atomic().check(e).delete(e.key)
        .delete(userKey(e.value.user, e.value.idHash));
      if ((await op.commit()).ok) n++;
    }
    return n;
  }

  async #delete(idHash: string, actor: string): Promise<boolean> {
    const entry = await this.kv.get<SessionRecord>(idKey(idHash));
    const s = entry.value;
    if (s === null) return false;
    const op = this.kv.atomic().check(entry).delete(entry.key).delete(userKey(s.user, idHash));
    this.audit.stage(op, { actor, action: "session.delete", target: s.user, before: s });
    // A failed check means a concurrent delete won; the session is gone either way.
    return (await op.commit()).ok;
  }
}
