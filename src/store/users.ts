/**
 * Users: credentials, role, MFA secret (encrypted), knock parameters and the
 * rules they may unlock. Every user write validates the whole candidate set
 * (a first knock port unique among users with knocking enabled, not a rule's
 * public port nor the management port; no rule naming a deleted user; see
 * `_candidate.ts`) and commits only if no rule or user was written since it
 * read them. The index key `["idx","user-firstport",port]` is kept in the
 * same atomic operation as the user record.
 */
import type { Clock } from "../clock.ts";
import type { KnockProfile, KnockTransport } from "../knock/profile.ts";
import type { NetworkLayout } from "../nat/rule_validate.ts";
import { candidateOf, readConfig, refuseNewProblems, stageConfigVersion } from "./_candidate.ts";
import { randomBase32Secret } from "./_ids.ts";
import { RETRY, withRetry } from "./_retry.ts";
import { isInt } from "./_validate.ts";
import type { AuditLog } from "./audit.ts";
import { ConflictError, NotFoundError, ValidationError } from "./errors.ts";
import { hashPassword, verifyPassword } from "./password.ts";
import type { SealedSecret, SecretBox } from "./secret_box.ts";
import type { StoreAtomic, StoreKv } from "./store_kv.ts";

/** What a user may do through the API. */
export type Role = "administrator" | "operator" | "viewer";

/** Every role, most powerful first. */
export const ROLES: readonly Role[] = ["administrator", "operator", "viewer"];

/** A user's knock parameters (`portknock/v1`). */
export interface UserKnock {
  enabled: boolean;
  /** First knock port `F`, 1..65535 when enabled (0 = unset, allowed only when disabled). */
  firstPort: number;
  /** Ports after `F`, 1..8. */
  length: number;
  transport: KnockTransport;
}

/** A user's TOTP state; secrets are sealed with the store's key. */
export interface UserMfa {
  secretEnc: SealedSecret;
  /** The user proved once that their authenticator holds `secretEnc`. */
  enrolled: boolean;
  /** A new secret being enrolled (rotation); replaces `secretEnc` on confirmation. */
  pendingSecretEnc?: SealedSecret;
}

/** A stored user. */
export interface UserRecord {
  /** Unique, 1..32 characters of [a-z0-9._-]. */
  name: string;
  /** `scrypt$N$r$p$salt$hash`. */
  passwordHash: string;
  role: Role;
  mfa: UserMfa;
  knock: UserKnock;
  /** Rule names this user's unlocks open; "*" = all. */
  allowedRules: string[];
  createdAt: number;
  updatedAt: number;
  /** Starts at 1, +1 on every update. */
  version: number;
}

/** A user as shown to clients: no hash, no secrets. */
export interface PublicUser {
  name: string;
  role: Role;
  mfa: { enrolled: boolean; rotating: boolean };
  knock: UserKnock;
  allowedRules: string[];
  createdAt: number;
  updatedAt: number;
  version: number;
}

/** Input of `createUser`. */
export interface NewUser {
  name: string;
  password: string;
  role: Role;
  /** Missing fields take the defaults: disabled, port 0, length 3, transport "any". */
  knock?: Partial<UserKnock>;
  allowedRules?: string[];
  /** Base32 TOTP secret; a fresh 160-bit one when absent. */
  totpSecret?: string;
  /**
   * Created already enrolled, in the same write (the initial administrator,
   * whose secret is shown once with its password); default false.
   */
  enrolled?: boolean;
}

/** Input of `updateUser`; absent fields stay as they are. */
export interface UserPatch {
  password?: string;
  role?: Role;
  knock?: Partial<UserKnock>;
  allowedRules?: string[];
}

/** Both TOTP secrets of a user, decrypted. */
export interface MfaSecrets {
  secret: string;
  enrolled: boolean;
  pending: string | null;
}

const DEFAULT_KNOCK: UserKnock = { enabled: false, firstPort: 0, length: 3, transport: "any" };
const NAME_RE = /^[a-z0-9._-]{1,32}$/;
const TRANSPORTS: readonly KnockTransport[] = ["tcp", "udp", "any"];

function userKey(name: string): Deno.KvKey {
  return ["users", name];
}

function portKey(port: number): Deno.KvKey {
  return ["idx", "user-firstport", port];
}

/** The user without password hash and secrets. */
export function toPublicUser(u: UserRecord): PublicUser {
  return {
    name: u.name,
    role: u.role,
    mfa: { enrolled: u.mfa.enrolled, rotating: u.mfa.pendingSecretEnc !== undefined },
    knock: { ...u.knock },
    allowedRules: [...u.allowedRules],
    createdAt: u.createdAt,
    updatedAt: u.updatedAt,
    version: u.version,
  };
}

/** Throws unless `name` is a valid user name. */
export function validateUserName(name: unknown): asserts name is string {
  if (typeof name !== "string" || !NAME_RE.test(name)) {
    throw new ValidationError(
      "name",
      `Invalid user name ${JSON.stringify(name)}: use 1..32 characters of a-z 0-9 . _ -`,
    );
  }
}

function validatePassword(name: string, password: unknown): asserts password is string {
  if (typeof password !== "string" || password.length < 8 || password.length > 1024) {
    throw new ValidationError(
      "password",
      `Invalid password for user "${name}": use 8..1024 characters`,
    );
  }
}

function validateRole(name: string, role: unknown): asserts role is Role {
  if (!ROLES.includes(role as Role)) {
    throw new ValidationError(
      "role",
      `Invalid role ${JSON.stringify(role)} for user "${name}": use ${ROLES.join(", ")}`,
    );
  }
}

function validateKnock(name: string, k: UserKnock): void {
  const bad = (field: string, what: string) =>
    new ValidationError(`knock.${field}`, `Invalid knock settings for user "${name}": ${what}`);
  if (typeof k.enabled !== "boolean") throw bad("enabled", "enabled must be true or false");
  if (!isInt(k.firstPort, k.enabled ? 1 : 0, 65535)) {
    throw bad("firstPort", `first port ${k.firstPort} is out of range 1..65535`);
  }
  if (!isInt(k.length, 1, 8)) throw bad("length", `length ${k.length} is out of range 1..8`);
  if (!TRANSPORTS.includes(k.transport)) {
    throw bad("transport", `transport ${JSON.stringify(k.transport)} is not tcp, udp or any`);
  }
}

function validateAllowedRules(name: string, rules: unknown): asserts rules is string[] {
  const ok = Array.isArray(rules) &&
    rules.every((r) => typeof r === "string" && r.length >= 1 && r.length <= 64);
  if (!ok) {
    throw new ValidationError(
      "allowedRules",
      `Invalid allowed rules for user "${name}": use a list of rule names or "*"`,
    );
  }
}

function validateTotpSecret(name: string, secret: string): void {
  // RFC 4648 base32; 32 characters carry 160 bits, the protocol's minimum.
  if (!/^[A-Z2-7]{32,}=*$/.test(secret)) {
    throw new ValidationError(
      "totpSecret",
      `Invalid TOTP secret for user "${name}": use base32 of at least 20 bytes`,
    );
  }
}

/**
 * Every field problem of a whole user record (a backup's), one message per
 * field, where the write paths throw at the first.
 */
export function userRecordProblems(u: UserRecord): ValidationError[] {
  const out: ValidationError[] = [];
  const check = (fn: () => void) => {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof ValidationError)) throw e;
      out.push(e);
    }
  };
  check(() => validateUserName(u?.name));
  const name = String(u?.name);
  check(() => validateRole(name, u.role));
  check(() => validateKnock(name, { ...DEFAULT_KNOCK, ...u.knock }));
  check(() => validateAllowedRules(name, u.allowedRules));
  if (typeof u.passwordHash !== "string" || !u.passwordHash.startsWith("scrypt$")) {
    out.push(new ValidationError("passwordHash", `User "${name}": passwordHash is not scrypt$...`));
  }
  const sealed = (s: unknown) =>
    s !== null && typeof s === "object" && typeof (s as SealedSecret).iv === "string" &&
    typeof (s as SealedSecret).ciphertext === "string";
  if (!sealed(u.mfa?.secretEnc) || typeof u.mfa.enrolled !== "boolean") {
    out.push(new ValidationError("mfa", `User "${name}": mfa needs secretEnc {iv, ciphertext}`));
  } else if (u.mfa.pendingSecretEnc !== undefined && !sealed(u.mfa.pendingSecretEnc)) {
    out.push(new ValidationError("mfa.pendingSecretEnc", `User "${name}": not {iv, ciphertext}`));
  }
  return out;
}

/** The port a user holds in the first-port index, or null. */
function indexedPort(u: UserRecord | null): number | null {
  return u !== null && u.knock.enabled ? u.knock.firstPort : null;
}

/** Repository of users. */
export class UserRepo {
  #dummyHash: Promise<string> | null = null;

  /**
   * Users in `kv`; secrets sealed by `box`; changes recorded in `audit`.
   * Without `network` the first knock port is not checked against the
   * management port.
   */
  constructor(
    private readonly kv: StoreKv,
    private readonly box: SecretBox,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly network?: NetworkLayout,
  ) {}

  /** Creates a user; ConflictError if the name or first knock port is taken. */
  async createUser(input: NewUser, actor: string): Promise<UserRecord> {
    validateUserName(input.name);
    const name = input.name;
    validatePassword(name, input.password);
    validateRole(name, input.role);
    const knock: UserKnock = { ...DEFAULT_KNOCK, ...input.knock };
    validateKnock(name, knock);
    const allowedRules = input.allowedRules ?? [];
    validateAllowedRules(name, allowedRules);
    const secret = input.totpSecret ?? randomBase32Secret();
    validateTotpSecret(name, secret);
    const passwordHash = await hashPassword(input.password);
    const secretEnc = await this.box.seal(secret, name);
    return await this.#write(name, "user.create", actor, (before) => {
      if (before !== null) throw new ConflictError("name", `user "${name}" already exists`);
      const now = this.clock.now();
      return {
        name,
        passwordHash,
        role: input.role,
        mfa: { secretEnc, enrolled: input.enrolled === true },
        knock,
        allowedRules: [...allowedRules],
        createdAt: now,
        updatedAt: now,
        version: 1,
      };
    });
  }

  /** The id of the key this store seals secrets with (see `SecretBox.keyId`). */
  get keyId(): string {
    return this.box.keyId;
  }

  /**
   * Writes a user record restored from a backup, keeping its password hash
   * and sealed secrets. With `from` (the box of the key the backup was sealed
   * with) the secrets are re-sealed with this store's key; otherwise they must
   * already be this store's. ConflictError if the name exists.
   */
  async restoreUser(record: UserRecord, actor: string, from?: SecretBox): Promise<UserRecord> {
    const name = record.name;
    const reseal = async (s: SealedSecret) =>
      from === undefined ? s : await this.box.seal(await from.open(s, name), name);
    const mfa: UserMfa = {
      secretEnc: await reseal(record.mfa.secretEnc),
      enrolled: record.mfa.enrolled,
    };
    if (record.mfa.pendingSecretEnc !== undefined) {
      mfa.pendingSecretEnc = await reseal(record.mfa.pendingSecretEnc);
    }
    return await this.#write(name, "user.restore", actor, (before) => {
      if (before !== null) throw new ConflictError("name", `user "${name}" already exists`);
      const now = this.clock.now();
      return {
        name,
        passwordHash: record.passwordHash,
        role: record.role,
        mfa,
        knock: { ...DEFAULT_KNOCK, ...record.knock },
        allowedRules: [...record.allowedRules],
        createdAt: record.createdAt ?? now,
        updatedAt: now,
        version: 1,
      };
    });
  }

  /** The user named `name`, or null. */
  async findUser(name: string): Promise<UserRecord | null> {
    return (await this.kv.get<UserRecord>(userKey(name))).value;
  }

  /** The user named `name`; NotFoundError if absent. */
  async getUser(name: string): Promise<UserRecord> {
    const u = await this.findUser(name);
    if (u === null) throw new NotFoundError("user", name);
    return u;
  }

  /** Every user, by name. */
  async listUsers(): Promise<UserRecord[]> {
    const out: UserRecord[] = [];
    for await (const e of this.kv.list<UserRecord>({ prefix: ["users"] })) out.push(e.value);
    return out;
  }

  /**
   * Applies `patch`. With `expectedVersion`, a ConflictError unless the stored
   * version still matches (optimistic concurrency for the API's If-Match).
   */
  async updateUser(
    name: string,
    patch: UserPatch,
    actor: string,
    expectedVersion?: number,
  ): Promise<UserRecord> {
    if (patch.password !== undefined) validatePassword(name, patch.password);
    if (patch.role !== undefined) validateRole(name, patch.role);
    if (patch.allowedRules !== undefined) validateAllowedRules(name, patch.allowedRules);
    const passwordHash = patch.password === undefined
      ? undefined
      : await hashPassword(patch.password);
    return await this.#update(name, "user.update", actor, expectedVersion, (u) => {
      const knock = { ...u.knock, ...patch.knock };
      validateKnock(name, knock);
      return {
        ...u,
        passwordHash: passwordHash ?? u.passwordHash,
        role: patch.role ?? u.role,
        knock,
        allowedRules: patch.allowedRules ? [...patch.allowedRules] : u.allowedRules,
      };
    });
  }

  /**
   * Deletes the user and frees their first knock port. With
   * `expectedVersion`, a ConflictError unless the stored version still matches.
   */
  async deleteUser(name: string, actor: string, expectedVersion?: number): Promise<void> {
    await this.#write(name, "user.delete", actor, (before) => {
      if (before === null) throw new NotFoundError("user", name);
      if (expectedVersion !== undefined && before.version !== expectedVersion) {
        throw new ConflictError(
          "version",
          `user "${name}" is at version ${before.version}, not ${expectedVersion}`,
        );
      }
      return null;
    });
  }

  /**
   * The user if `password` is theirs, else null. An unknown name costs the
   * same scrypt work, so timing does not reveal which names exist.
   */
  async verifyUserPassword(name: string, password: string): Promise<UserRecord | null> {
    const u = await this.findUser(name);
    if (u === null) {
      this.#dummyHash ??= hashPassword("not-a-password");
      await verifyPassword(password, await this.#dummyHash);
      return null;
    }
    return (await verifyPassword(password, u.passwordHash)) ? u : null;
  }

  /** The user's TOTP secrets, decrypted. */
  async getMfaSecrets(name: string): Promise<MfaSecrets> {
    const u = await this.getUser(name);
    const pending = u.mfa.pendingSecretEnc;
    return {
      secret: await this.box.open(u.mfa.secretEnc, name),
      enrolled: u.mfa.enrolled,
      pending: pending === undefined ? null : await this.box.open(pending, name),
    };
  }

  /**
   * Starts (re-)enrolment: stores a new pending secret (fresh when `secret` is
   * absent) and returns it. The current secret stays valid until confirmation.
   */
  async beginMfaEnrollment(name: string, actor: string, secret?: string): Promise<string> {
    const next = secret ?? randomBase32Secret();
    validateTotpSecret(name, next);
    const pendingSecretEnc = await this.box.seal(next, name);
    await this.#update(name, "user.mfa.begin", actor, undefined, (u) => ({
      ...u,
      mfa: { ...u.mfa, pendingSecretEnc },
    }));
    return next;
  }

  /**
   * Marks the user enrolled; a pending secret replaces the current one. The
   * caller has checked a TOTP code against that secret.
   */
  async confirmMfaEnrollment(name: string, actor: string): Promise<UserRecord> {
    return await this.#update(name, "user.mfa.confirm", actor, undefined, (u) => ({
      ...u,
      mfa: { secretEnc: u.mfa.pendingSecretEnc ?? u.mfa.secretEnc, enrolled: true },
    }));
  }

  /** Knock profiles of the users with knocking enabled, for the verifier. */
  async knockProfiles(): Promise<KnockProfile[]> {
    return (await this.listUsers()).filter((u) => u.knock.enabled).map((u) => ({
      user: u.name,
      firstPort: u.knock.firstPort,
      length: u.knock.length,
      transport: u.knock.transport,
    }));
  }

  /** Read-modify-write of an existing user, bumping version and updatedAt. */
  #update(
    name: string,
    action: string,
    actor: string,
    expectedVersion: number | undefined,
    change: (u: UserRecord) => UserRecord,
  ): Promise<UserRecord> {
    return this.#write(name, action, actor, (before) => {
      if (before === null) throw new NotFoundError("user", name);
      if (expectedVersion !== undefined && before.version !== expectedVersion) {
        throw new ConflictError(
          "version",
          `user "${name}" is at version ${before.version}, not ${expectedVersion}`,
        );
      }
      return { ...change(before), version: before.version + 1, updatedAt: this.clock.now() };
    });
  }

  /**
   * The one write path: reads the user, every rule and every user, computes
   * the new record (null = delete), validates the candidate set, and commits
   * record, first-port index, config version and audit entry in one atomic
   * operation checked against what was read. Retries when another write got
   * in between; the re-read then reports the clash.
   */
  #write<T extends UserRecord | null>(
    name: string,
    action: string,
    actor: string,
    change: (before: UserRecord | null) => T,
  ): Promise<T> {
    return withRetry(`user "${name}"`, async () => {
      const entry = await this.kv.get<UserRecord>(userKey(name));
      const snap = await readConfig(this.kv);
      const after = change(entry.value);
      const others = snap.users.filter((u) => u.name !== name);
      refuseNewProblems(
        candidateOf(snap.rules, snap.users, this.network),
        candidateOf(snap.rules, after === null ? others : [...others, after], this.network),
        { kind: "user", name, verb: after === null ? "delete" : "save" },
      );
      const op = this.kv.atomic().check(entry);
      stageConfigVersion(op, snap);
      if (!await this.#stagePortMove(op, name, indexedPort(entry.value), indexedPort(after))) {
        return RETRY;
      }
      if (after === null) op.delete(userKey(name));
      else op.set(userKey(name), after);
      this.audit.stage(op, { actor, action, target: name, before: entry.value, after });
      return (await op.commit()).ok ? after : RETRY;
    });
  }

  /**
   * Moves the user's first-port index entry from `from` to `to` within `op`;
   * false when another user holds `to` (a write that committed after this one
   * read the candidate set: the retry's validation names the clash).
   */
  async #stagePortMove(
    op: StoreAtomic,
    name: string,
    from: number | null,
    to: number | null,
  ): Promise<boolean> {
    if (from === to) return true;
    if (from !== null) op.delete(portKey(from));
    if (to === null) return true;
    const held = await this.kv.get<string>(portKey(to));
    if (held.value !== null && held.value !== name) return false;
    // The check makes a concurrent claim of the same port fail this commit.
    op.check(held).set(portKey(to), name);
    return true;
  }
}
