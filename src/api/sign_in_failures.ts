/** Failed sign-ins by reason, since the appliance started, for `/metrics`. */

/** Why a sign-in failed, as the login route logs it. */
export const SIGN_IN_FAILURE_REASONS = [
  "bad-password",
  "bad-code",
  "code-reused",
  "mfa-not-enrolled",
  "throttled",
] as const;

/** One of `SIGN_IN_FAILURE_REASONS`. */
export type SignInFailureReason = (typeof SIGN_IN_FAILURE_REASONS)[number];

/** Running counts of failed sign-ins, one per reason. */
export class SignInFailures {
  readonly #counts = new Map<SignInFailureReason, number>(
    SIGN_IN_FAILURE_REASONS.map((r) => [r, 0]),
  );

  /** Counts one failure for `reason`. */
  count(reason: SignInFailureReason): void {
    this.#counts.set(reason, (this.#counts.get(reason) ?? 0) + 1);
  }

  /** Every reason with its count, zeros included (stable series). */
  entries(): [SignInFailureReason, number][] {
    return [...this.#counts];
  }
}
