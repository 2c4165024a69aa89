/** A user's knock parameters, as `portknock/v1` defines them. */

/** Transport a user's knocks must use. */
export type KnockTransport = "tcp" | "udp" | "any";

/** What the verifier needs to know about one user (no secret). */
export interface KnockProfile {
  /** Stable user id (the user name). */
  user: string;
  /** First knock port `F`, unique among users. */
  firstPort: number;
  /** Ports after `F`, 1..8. */
  length: number;
  transport: KnockTransport;
}
