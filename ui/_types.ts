/** Shapes of the API answers the pages render (inferred from the API's schemas). */
import type { z } from "zod";
import type {
  EventSchema,
  FlowSchema,
  ForwardSchema,
  NodeSchema,
  OpenPortsSchema,
  SettingsSchema,
  StatusSchema,
  StoreHealthSchema,
  UnlockSchema,
  UplinkSchema,
  UserSchema,
} from "../src/api/schemas.ts";
import type { AuthContext } from "../src/api/types.ts";

/** A user as the API shows it. */
export type User = z.infer<typeof UserSchema>;
/** A port forward. */
export type Forward = z.infer<typeof ForwardSchema>;
/** An open-ports rule. */
export type OpenPorts = z.infer<typeof OpenPortsSchema>;
/** The settings document. */
export type Settings = z.infer<typeof SettingsSchema>;
/** Counters, conntrack, clock. */
export type Status = z.infer<typeof StatusSchema>;
/** The store backend's connection state. */
export type StoreHealth = z.infer<typeof StoreHealthSchema>;
/** One appliance of the fleet sharing the store. */
export type FleetNode = z.infer<typeof NodeSchema>;
/** One unlocked IP. */
export type Unlock = z.infer<typeof UnlockSchema>;
/** A WAN uplink with its health. */
export type Uplink = z.infer<typeof UplinkSchema>;
/** One tracked flow. */
export type Flow = z.infer<typeof FlowSchema>;
/** One appliance event. */
export type EventView = z.infer<typeof EventSchema>;
/** A user role. */
export type Role = AuthContext["user"]["role"];

/** The signed-in user a page is rendered for. */
export interface Viewer {
  name: string;
  role: Role;
  /** Sent back as `X-CSRF-Token` by the page's scripts. */
  csrfToken: string;
}

/** Whether `v` may change rules and revoke unlocks. */
export function canOperate(v: Viewer): boolean {
  return v.role === "administrator" || v.role === "operator";
}

/** Whether `v` administers users and settings. */
export function isAdmin(v: Viewer): boolean {
  return v.role === "administrator";
}
