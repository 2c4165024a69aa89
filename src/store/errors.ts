/**
 * Typed store errors. The API turns each into one HTTP status: NotFoundError
 * 404, ConflictError 409, ValidationError 400.
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
