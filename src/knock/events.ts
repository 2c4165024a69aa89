/**
 * Events of the knock engine, as plain objects. They carry the same fields as
 * the log layer's events of the same `type` (addresses as dotted quads), minus
 * `time` and `severity`, which whoever logs them adds.
 */

/** A source IP completed a user's sequence and is unlocked. */
export interface KnockSuccess {
  type: "knock-success";
  ip: string;
  user: string;
  /** -1 (T-1), 0 (T) or 1 (T+1): the client's clock drift in steps. */
  drift: number;
  /** The step `T` of the matched sequence. */
  step: number;
}

/** Why a sequence in progress ended without unlocking. */
export type KnockFailureReason =
  /** A new-flow packet on a port that fits no candidate. */
  | "wrong-port"
  /** A packet on a sequence port, on a transport the user's profile refuses. */
  | "wrong-transport"
  /** Not completed within the sequence window from `F`. */
  | "window-expired"
  /** The user's profile changed or was removed mid-sequence. */
  | "profile-changed"
  /** Dropped to make room: too many sequences in progress. */
  | "evicted";

/** A sequence in progress ended without unlocking. */
export interface KnockFailure {
  type: "knock-failure";
  ip: string;
  /** The user whose `F` started the sequence. */
  user?: string;
  reason: KnockFailureReason;
}

/** A step that unlocked one IP for a user was completed from another IP (refused). */
export interface KnockReplay {
  type: "knock-replay";
  ip: string;
  user: string;
  step: number;
  /** The IP this step first unlocked. */
  firstIp: string;
}

/** An IP failed too often: its knocks are ignored until `until` (ms since the epoch). */
export interface KnockPenalty {
  type: "knock-penalty";
  ip: string;
  until: number;
}

/** Why an unlock ended on its own. */
export type UnlockExpiryReason = "idle" | "lifetime" | "evicted";

/** An unlock ended on its own (`evicted`: the table was full and it was the oldest). */
export interface UnlockExpired {
  type: "unlock-expired";
  ip: string;
  user: string;
  reason: UnlockExpiryReason;
}

/** An unlock was ended on purpose (by an operator, a user change, ...). */
export interface UnlockRevoked {
  type: "unlock-revoked";
  ip: string;
  user: string;
  /** Who or what revoked it. */
  by: string;
}

/** What the `KnockVerifier` reports. */
export type KnockEvent = KnockSuccess | KnockFailure | KnockReplay | KnockPenalty;

/** What the `UnlockTable` reports. */
export type UnlockEvent = UnlockExpired | UnlockRevoked;
