/**
 * The knock page's logic without the DOM: form validation, the TOTP code
 * (RFC 6238), the knock sequence, the knock plan and its runner, and the
 * self-test against `knock-vectors.json`. HMACs come from `hmac.ts` (WebCrypto
 * or, without a secure context, the bundled `@noble/hashes`); the message and
 * port selection from `src/knock/sequence.ts`, never copied. Runs in Deno
 * (tests) and browsers.
 */

import { base32Decode } from "../../src/knock/base32.ts";
import { isBlockedPort } from "../../src/knock/browser_ports.ts";
import {
  KNOCK_MAX_LENGTH,
  knockMessage,
  portsFromDigest,
  stepOf,
} from "../../src/knock/sequence.ts";
import { formatIpv4 } from "../../src/packet/address.ts";
import { formatIpv6, isIpv4Mapped, parseIpv6 } from "../../src/packet/ipv6_address.ts";
import { type HmacEngine, hmacEngines, hmacSign } from "./hmac.ts";

export { type HmacEngine, hmacEngines } from "./hmac.ts";

export { BLOCKED_PORTS, isBlockedPort } from "../../src/knock/browser_ports.ts";

/** Default number of ports after the first one. */
export const DEFAULT_LENGTH = 3;
/** Default pause between knocks, in milliseconds. */
export const DEFAULT_DELAY_MS = 100;
/** Shortest pause between knocks the protocol allows. */
export const MIN_DELAY_MS = 20;
/** Longest pause between knocks the page accepts: 9 knocks fit the appliance's 15 s window. */
export const MAX_DELAY_MS = 1500;
/** Fewest secret bytes a `portknock/v1` secret holds. */
export const MIN_SECRET_BYTES = 20;

/** The 6-digit RFC 6238 code (HMAC-SHA1, 30 s steps) of raw secret bytes at `unixSec`. */
export async function totpCodeBytes(
  secret: Uint8Array,
  unixSec: number,
  engine?: HmacEngine,
): Promise<string> {
  const counter = new Uint8Array(8);
  new DataView(counter.buffer).setBigUint64(0, BigInt(stepOf(unixSec)), false);
  const mac = await hmacSign("SHA-1", secret, counter, engine);
  // RFC 4226 §5.3 dynamic truncation: the low nibble of the last byte picks 4 bytes.
  const at = mac[19] & 0x0f;
  const bin = ((mac[at] & 0x7f) << 24) | (mac[at + 1] << 16) | (mac[at + 2] << 8) | mac[at + 3];
  return String(bin % 1_000_000).padStart(6, "0");
}

/** The 6-digit TOTP code of a base32 secret at `unixSec`. */
export function totpCode(secretB32: string, unixSec: number, engine?: HmacEngine): Promise<string> {
  return totpCodeBytes(base32Decode(secretB32), unixSec, engine);
}

/**
 * `[F, p1, .., pN]` at `unixSec` from a base32 secret, as
 * `src/knock/sequence.ts`'s `knockSequenceAt` derives it, by `engine`.
 */
export async function sequenceAt(
  secretB32: string,
  unixSec: number,
  firstPort: number,
  length: number,
  engine?: HmacEngine,
): Promise<number[]> {
  if (!Number.isInteger(firstPort) || firstPort < 1 || firstPort > 65535) {
    throw new Error(`Cannot derive knock sequence: first port ${firstPort} is out of range`);
  }
  if (!Number.isInteger(length) || length < 1 || length > KNOCK_MAX_LENGTH) {
    throw new Error(`Cannot derive knock sequence: length ${length} is out of range 1..8`);
  }
  const msg = knockMessage(stepOf(unixSec), firstPort);
  const mac = await hmacSign("SHA-256", base32Decode(secretB32), msg, engine);
  return portsFromDigest(mac, firstPort, length);
}

/** Seconds left in the current 30 s step. */
export function secondsLeft(unixSec: number): number {
  return 30 - Math.floor(unixSec % 30);
}

/** The raw text of the form's fields. */
export interface KnockForm {
  profile: string;
  server: string;
  firstPort: string;
  secret: string;
  length: string;
  delayMs: string;
  thenPort: string;
}

/** A validated profile: everything a knock needs. */
export interface KnockParams {
  profile: string;
  server: string;
  firstPort: number;
  secret: string;
  length: number;
  delayMs: number;
  thenPort: number | null;
}

/** An error message per field at fault. */
export type FieldErrors = Partial<Record<keyof KnockForm, string>>;

/** The outcome of `validateForm`. */
export type Validation = { ok: true; params: KnockParams } | { ok: false; errors: FieldErrors };

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** True when `server` is a dotted-quad IPv4 address (not a host name). */
export function isIpv4(server: string): boolean {
  return IPV4.test(server) && server.split(".").every((o) => Number(o) <= 255);
}

/** An IPv6 literal, with or without brackets, as four words; null otherwise. */
function ipv6Words(server: string): Uint32Array | null {
  const bare = /^\[(.*)\]$/.exec(server)?.[1] ?? server;
  return bare.includes(":") ? parseIpv6(bare) : null;
}

/**
 * The address a literal `server` names, normalised (RFC 5952 text for IPv6,
 * no brackets; an IPv4-mapped IPv6 address as the dotted quad it carries, as
 * its packets are IPv4), with its family; null for a host name, whose family
 * the browser picks.
 */
export function serverAddress(server: string): { address: string; family: 4 | 6 } | null {
  if (isIpv4(server)) return { address: server, family: 4 };
  const w = ipv6Words(server);
  if (w === null) return null;
  if (isIpv4Mapped(w)) return { address: formatIpv4(w[3] >>> 0), family: 4 };
  return { address: formatIpv6(w), family: 6 };
}

/** `server` as the host of a URL: an IPv6 address in brackets (RFC 3986 §3.2.2). */
export function urlHost(server: string): string {
  const a = serverAddress(server);
  return a?.family === 6 ? `[${a.address}]` : a?.address ?? server;
}

/** Why `server` cannot be knocked, or null when it can. */
export function serverError(server: string): string | null {
  if (server === "") {
    return "Enter the appliance's address, e.g. 198.51.100.1, 2001:db8::1 or knock.example.net.";
  }
  if (server.includes("://")) return "Enter the address alone, without http:// or a path.";
  if (/^\[.*\]:\d+$/.test(server)) return "Enter the address alone, without a port or a path.";
  if (server.includes("[") || (server.match(/:/g) ?? []).length > 1) {
    if (server.includes("%")) {
      return "Enter the IPv6 address without a zone (%...): the appliance's is not link-local.";
    }
    return ipv6Words(server) ? null : `${server} is not an IPv6 address.`;
  }
  if (/[/:]/.test(server)) return "Enter the address alone, without a port or a path.";
  if (IPV4.test(server)) {
    return isIpv4(server) ? null : `${server} is not an IPv4 address: each part is 0..255.`;
  }
  const labels = server.replace(/\.$/, "").split(".");
  if (server.length > 253 || !labels.every((l) => LABEL.test(l))) {
    return `${server} is not a host name: use letters, digits, hyphens and dots.`;
  }
  return null;
}

/** Parses a whole number in `min..max`, or returns the error message for `what`. */
function intIn(text: string, what: string, min: number, max: number): number | string {
  if (!/^\d+$/.test(text)) return `${what} must be a whole number from ${min} to ${max}.`;
  const n = Number(text);
  if (n < min || n > max) return `${what} ${n} is out of range ${min}..${max}.`;
  return n;
}

/** Why `port` cannot be used as a knock target, or null. */
function portError(text: string, what: string): number | string {
  const n = intIn(text, what, 1, 65535);
  if (typeof n === "number" && isBlockedPort(n)) {
    return `Browsers refuse to connect to port ${n} (a "bad port" of the Fetch standard): ` +
      `pick another port or use the command-line client.`;
  }
  return n;
}

/** Why `secret` is not a usable base32 secret, or null. The secret is never echoed. */
export function secretError(secret: string): string | null {
  if (secret.trim() === "") return "Enter the secret your administrator gave you (base32).";
  let bytes: Uint8Array;
  try {
    bytes = base32Decode(secret);
  } catch (e) {
    // base32Decode quotes the input: keep only the reason after it.
    const reason = String((e as Error).message).replace(/^.*": /, "");
    return `The secret is not valid base32 (letters A-Z and digits 2-7): ${reason}.`;
  }
  if (bytes.length < MIN_SECRET_BYTES) {
    return `The secret holds ${bytes.length} bytes; a knock secret holds at least ` +
      `${MIN_SECRET_BYTES} (32 base32 characters).`;
  }
  return null;
}

/** Checks every field; returns the params or one message per field at fault. */
export function validateForm(form: KnockForm): Validation {
  const errors: FieldErrors = {};
  const server = form.server.trim();
  const profile = form.profile.trim();
  if (profile.length > 64) errors.profile = "The profile name holds at most 64 characters.";
  const se = serverError(server);
  if (se) errors.server = se;
  const firstPort = portError(form.firstPort.trim(), "The first port");
  if (typeof firstPort === "string") errors.firstPort = firstPort;
  const sec = secretError(form.secret);
  if (sec) errors.secret = sec;
  const length = intIn(form.length.trim() || String(DEFAULT_LENGTH), "The length", 1, 8);
  if (typeof length === "string") errors.length = length;
  const delayText = form.delayMs.trim() || String(DEFAULT_DELAY_MS);
  const delayMs = intIn(delayText, "The delay", MIN_DELAY_MS, MAX_DELAY_MS);
  if (typeof delayMs === "string") errors.delayMs = delayMs;
  const thenText = form.thenPort.trim();
  const thenPort = thenText === "" ? null : portError(thenText, "The port");
  if (typeof thenPort === "string") errors.thenPort = thenPort;
  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return {
    ok: true,
    params: {
      profile,
      server: serverAddress(server)?.address ?? server,
      firstPort: firstPort as number,
      secret: form.secret.replace(/\s+/g, "").toUpperCase(),
      length: length as number,
      delayMs: delayMs as number,
      thenPort: thenPort as number | null,
    },
  };
}

/** The knock sequence `[F, p1, .., pN]` of validated params at `unixSec`. */
export function sequenceFor(params: KnockParams, unixSec: number): Promise<number[]> {
  return sequenceAt(params.secret, unixSec, params.firstPort, params.length);
}

/**
 * The longest delay Chromium's WebSocket throttle adds before connecting when
 * the page made `failures` earlier attempts: `rand(1000..5000) *
 * 2^min(pending + failed, 16) / 65536` ms, where the attempt itself (and, as
 * the close of the previous one may still be in flight, that one instead of
 * its failure) counts as pending, hence `failures + 1`. Every knock ends as
 * such a failure; the counts fade after two to four minutes.
 */
export function throttleBoundMs(failures: number): number {
  return Math.ceil((5000 * 2 ** Math.min(failures + 1, 16)) / 65536);
}

/** Margin for the browser to start the connection once the throttle lets it. */
const START_MARGIN_MS = 25;
/** Longest a name lookup may take before the first knock's SYN. */
const NAME_LOOKUP_MS = 1500;

/**
 * How long each knock's connection attempt is held before it is abandoned
 * and the next one starts: the delay, stretched so that the browser has sent
 * the SYN before the attempt is dropped (throttle, name lookup).
 */
export function planHolds(
  count: number,
  delayMs: number,
  priorFailures: number,
  serverIsName: boolean,
): number[] {
  const holds: number[] = [];
  for (let i = 0; i < count; i++) {
    let hold = Math.max(delayMs, throttleBoundMs(priorFailures + i) + START_MARGIN_MS);
    if (i === 0 && serverIsName) hold = Math.max(hold, NAME_LOOKUP_MS);
    holds.push(hold);
  }
  return holds;
}

/** A connection attempt in flight. */
export interface Attempt {
  /** Abandons the attempt (no further packet is sent for it). */
  close(): void;
}

/** Starts one knock's connection attempt to `port`. */
export type Connect = (port: number) => Attempt;

/** One knock as sent. */
export interface KnockRecord {
  index: number;
  port: number;
  /** Milliseconds since the first knock started. */
  atMs: number;
}

/** What `runKnocks` needs from its surroundings; injectable for tests. */
export interface KnockIo {
  connect: Connect;
  sleep(ms: number): Promise<void>;
  now(): number;
  onKnock?(record: KnockRecord): void;
}

/**
 * Knocks `ports` in order, one attempt at a time: each attempt is held
 * `holds[i]` ms, then abandoned, and the next starts at once.
 */
export async function runKnocks(
  ports: readonly number[],
  holds: readonly number[],
  io: KnockIo,
): Promise<KnockRecord[]> {
  const records: KnockRecord[] = [];
  const start = io.now();
  for (let i = 0; i < ports.length; i++) {
    const record = { index: i, port: ports[i], atMs: Math.round(io.now() - start) };
    const attempt = io.connect(ports[i]);
    records.push(record);
    io.onKnock?.(record);
    try {
      await io.sleep(holds[i]);
    } finally {
      attempt.close();
    }
  }
  return records;
}

/** One case of `knock-vectors.json`. */
export interface VectorCase {
  secret: string;
  unixTime: number;
  firstPort: number;
  length: number;
  totp: string;
  sequence: number[];
}

/** The outcome of one vector case in `selfTest`. */
export interface SelfTestCase {
  index: number;
  engine: HmacEngine;
  ok: boolean;
  totp: string;
  expectedTotp: string;
  sequence: number[];
  expectedSequence: number[];
}

/** The outcome of `selfTest`. */
export interface SelfTestResult {
  ok: boolean;
  /** The engines checked; the first is the one the page knocks with. */
  engines: HmacEngine[];
  passed: number;
  failed: number;
  cases: SelfTestCase[];
}

/** Recomputes every vector's TOTP code and sequence with each HMAC engine of this runtime. */
export async function selfTest(
  cases: readonly VectorCase[],
  engines: HmacEngine[] = hmacEngines(),
): Promise<SelfTestResult> {
  const out: SelfTestCase[] = [];
  for (const engine of engines) {
    for (const [index, v] of cases.entries()) {
      const totp = await totpCode(v.secret, v.unixTime, engine);
      const sequence = await sequenceAt(v.secret, v.unixTime, v.firstPort, v.length, engine);
      const ok = totp === v.totp && sequence.join() === v.sequence.join();
      out.push({
        index,
        engine,
        ok,
        totp,
        expectedTotp: v.totp,
        sequence,
        expectedSequence: v.sequence,
      });
    }
  }
  const passed = out.filter((c) => c.ok).length;
  const ok = out.length > 0 && passed === out.length;
  return { ok, engines, passed, failed: out.length - passed, cases: out };
}

/** The most ports a knock holds (F and N derived ports). */
export const MAX_KNOCKS = KNOCK_MAX_LENGTH + 1;
