/**
 * The management API's request and response shapes, inferred from its zod
 * schemas. Type-only imports: nothing of the server is loaded at run time.
 */
import type { z } from "@hono/zod-openapi";
import type {
  AuditEntrySchema,
  CreatedTokenSchema,
  EnrollmentSchema,
  ErrorSchema,
  EventSchema,
  FlowSchema,
  ForwardSchema,
  NodeSchema,
  OpenPortsSchema,
  SessionSchema,
  SettingsSchema,
  StatusSchema,
  StoreHealthSchema,
  UnlockSchema,
  UplinkSchema,
  UserEnrollmentSchema,
  UserSchema,
} from "../../api/schemas.ts";

/** The JSON body of every API error. */
export type ApiErrorBody = z.infer<typeof ErrorSchema>;
/** A user as the API shows it. */
export type User = z.infer<typeof UserSchema>;
/** A TOTP secret to enrol, its URI and QR code. */
export type Enrollment = z.infer<typeof EnrollmentSchema>;
/** A user with the enrolment they must verify. */
export type UserEnrollment = z.infer<typeof UserEnrollmentSchema>;
/** A signed-in session (`/auth/login`, `/auth/me`). */
export type Session = z.infer<typeof SessionSchema>;
/** A bearer token, shown once. */
export type CreatedToken = z.infer<typeof CreatedTokenSchema>;
/** A stored port forward. */
export type Forward = z.infer<typeof ForwardSchema>;
/** A stored open-ports rule. */
export type OpenPorts = z.infer<typeof OpenPortsSchema>;
/** One unlocked source IP. */
export type Unlock = z.infer<typeof UnlockSchema>;
/** A WAN uplink with its health. */
export type Uplink = z.infer<typeof UplinkSchema>;
/** One tracked flow. */
export type Flow = z.infer<typeof FlowSchema>;
/** One appliance of the fleet sharing the store. */
export type FleetNode = z.infer<typeof NodeSchema>;
/** The store backend's connection state. */
export type StoreHealth = z.infer<typeof StoreHealthSchema>;
/** Counters, conntrack, store, clock. */
export type Status = z.infer<typeof StatusSchema>;
/** The appliance settings. */
export type Settings = z.infer<typeof SettingsSchema>;
/** An appliance event with its sequence number. */
export type ApplianceEventView = z.infer<typeof EventSchema>;
/** One audit log entry. */
export type AuditEntry = z.infer<typeof AuditEntrySchema>;
