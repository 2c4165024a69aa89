/**
 * Typed store errors. The API turns each into one HTTP status: NotFoundError
 * 404, ConflictError 409, ValidationError 400, ConfigProblemError 409 or 422.
 */

/** Base class of every error the store throws on purpose. */
export class StoreError extends Error {
  /** Creates a store error with `message`. */
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The named record does not exist. */
export class NotFoundError extends StoreError {
  /** `resource` is e.g. "user", `key` the name looked up. */
  constructor(readonly resource: string, readonly key: string) {
    super(`${resource} "${key}" does not exist`);
  }
}

/** A write clashes with stored state (a taken name or port, a stale version). */
export class ConflictError extends StoreError {
  /** `field` names the input field that clashes, e.g. "knock.firstPort". */
  constructor(readonly field: string, message: string) {
    super(message);
  }
}

/** An input value is malformed or out of range. */
export class ValidationError extends StoreError {
  /** `field` names the offending input field, e.g. "publicPorts.end". */
  constructor(readonly field: string, message: string) {
    super(message);
  }
}

/** One problem of a configuration write, in the writer's terms. */
export interface FieldProblem {
  /** The written record's field, e.g. `publicPorts`, `users[0]`, `knock.firstPort`. */
  field: string;
  message: string;
  /** The other party of a clash and its field, e.g. `rule "web" publicPorts 52201`. */
  clash?: string;
}

/**
 * A rule or user write the configuration validation refused, with every
 * problem it would introduce. `conflict` is true when one of them is a clash
 * with another stored rule or user (HTTP 409), false when the write is wrong
 * on its own or against the addressing (HTTP 422).
 */
export class ConfigProblemError extends StoreError {
  /** Every problem, the first one's field in `field`. */
  constructor(readonly problems: FieldProblem[], readonly conflict: boolean) {
    super(problems.map((p) => p.message).join("; "));
  }

  /** The first problem's field. */
  get field(): string {
    return this.problems[0]?.field ?? "";
  }
}

/**
 * The store's backend cannot be reached (etcd: no member answers). Reads
 * still answer from the last known state; writes throw this (HTTP 503).
 */
export class StoreUnavailableError extends StoreError {}
