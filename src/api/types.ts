/** What the API is built from, and what its handlers see in the context. */
import type { Clock } from "../clock.ts";
import type { Config } from "../config/types.ts";
import type { DatapathApi } from "../datapath/control.ts";
import type { ClockHealth } from "../host/clock_health.ts";
import type { NodeHeartbeat } from "./fleet.ts";
import type { CertInfo } from "../host/tls.ts";
import type { Logger } from "../log/logger.ts";
import type { Store } from "../store/mod.ts";
import type { SessionRecord } from "../store/sessions.ts";
import type { UserRecord } from "../store/users.ts";

/** Which part of the store changed; the data plane is re-synced for it. */
export type ChangeKind = "users" | "rules" | "settings";

/** The management listener's certificate, as `GET`/`PUT /tls` see and change it. */
export interface TlsState {
  /** What the listener serves now. */
  active: CertInfo;
  /** `config`: the file's `tls` paths (the API cannot replace them); else the pair beside the store. */
  source: "config" | "store" | "generated";
  /** Where `PUT /tls` writes the pair (read at the next start). */
  paths: { cert: string; key: string };
  /** A pair installed through the API since the start, served from the next start. */
  pending: CertInfo | null;
}

/** Everything `createApp` needs. */
export interface ApiDeps {
  store: Store;
  datapath: DatapathApi;
  logger: Logger;
  clock: Clock;
  config: Config;
  /** Reports whether the system clock is NTP-synchronised (cached by the API). */
  clockHealth?: () => Promise<ClockHealth>;
  /** Pushes a store change into the running data plane (see `syncDatapath`). */
  onChange?: (what: ChangeKind) => Promise<void>;
  /** The host firewall's packets by rule comment (`parseNftCounters`); absent without host routing. */
  hostCounters?: () => Promise<Record<string, number>>;
  /** The listener's certificate; absent under tests that serve no TLS (`/tls` answers 404). */
  tls?: TlsState;
  /** This node in the registry (`GET /nodes` shows its live record); absent under tests. */
  node?: NodeHeartbeat;
  /** When the appliance started, ms since the epoch; default the time `createApp` ran. */
  startedAt?: number;
}

/** The signed-in principal of a request. */
export interface AuthContext {
  /** The user, re-read from the store for this request. */
  user: UserRecord;
  session: SessionRecord;
  /** The client's session id or token (only its hash is stored). */
  id: string;
  kind: "cookie" | "token";
}

/** Hono environment of every router. */
export interface AppEnv {
  Variables: {
    /** Null when the request carries no valid session or token. */
    auth: AuthContext | null;
  };
}
