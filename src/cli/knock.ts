/**
 * The knock client (`deno task knock`): derives the `portknock/v1` sequence
 * from a TOTP secret and knocks it on the appliance's WAN address, one TCP
 * SYN (a connection attempt abandoned at once) or UDP datagram per port.
 *
 *   deno task knock --host 198.51.100.1 --first-port 41001 --secret JBSW...
 *   deno task knock --host 2001:db8::1 --first-port 41001 --secret JBSW...
 *   deno task knock --profile home --family both --then-connect 22
 *
 * The address family (`--family`): `auto` knocks the first address the
 * system resolver (getaddrinfo, RFC 6724 order) gives, the one a plain
 * connect to the name would use, so the unlock is for the address the next
 * connection comes from; `4` or `6` picks that family; `both` knocks the same
 * sequence once over each family the host has, IPv4 first. Every knock line
 * names the address and the family.
 *
 * Exit codes: 0 ok, 1 resolving, sending or `--then-connect` failed, 2 usage.
 */

import { Command, CommanderError, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import dgram from "node:dgram";
import dns from "node:dns/promises";
import { base32Decode } from "../knock/base32.ts";
import { formatIpv4, parseIpv4 } from "../packet/address.ts";
import { formatIpv6, isIpv4Mapped, parseIpv6 } from "../packet/ipv6_address.ts";
import { knockSequenceAt } from "../knock/sequence.ts";
import { taskArgs } from "./task_args.ts";
import {
  type ClientFamily,
  type ClientTransport,
  type Env,
  loadProfile,
  profilesPath,
  type SavedProfile,
  saveProfile,
} from "./profiles.ts";

/** Exit codes of the knock client. */
export const ExitCode = { Ok: 0, ConnectFailed: 1, Usage: 2 } as const;

/** Where the client writes and what environment it reads; injectable for tests. */
export interface KnockIo {
  out(line: string): void;
  err(line: string): void;
  env: Env;
}

/** Everything a knock needs, after merging options, a profile and defaults. */
export interface KnockSettings extends SavedProfile {
  family: ClientFamily;
  delayMs: number;
}

/** One address a knock goes to. */
export interface KnockTarget {
  /** The address as text: a dotted quad, or RFC 5952 IPv6 text without brackets. */
  address: string;
  family: 4 | 6;
}

/** The system resolver: every address of `host` in the order getaddrinfo gives. */
export type Lookup = (host: string) => Promise<KnockTarget[]>;

const DEFAULT_LENGTH = 3;
const DEFAULT_DELAY_MS = 100;
/** Pause between the last knock and `--then-connect`, for the appliance to apply the unlock. */
const CONNECT_WAIT_MS = 300;
const CONNECT_TIMEOUT_MS = 3000;
/** How long the last TCP knock's attempt is kept before it is dropped. */
const LAST_SYN_HOLD_MS = 50;

class UsageError extends Error {}

/** A host that has none of the address family asked for (exit 1, not a usage error). */
class FamilyError extends Error {}

function intArg(what: string, min: number, max: number): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max) {
      throw new InvalidArgumentError(`${what} ${v} is not an integer in ${min}..${max}`);
    }
    return n;
  };
}

function program(io: KnockIo) {
  return new Command("knock")
    .description("Knock a portknock/v1 sequence on a Knockgate appliance.")
    .option(
      "--host <host>",
      "the appliance's WAN address (IPv4, IPv6, [IPv6]) or host name",
    )
    .addOption(
      new Option(
        "--family <f>",
        "auto: the resolver's first address; 4 or 6; both: each family, IPv4 first " +
          "(default: 4 for a name, the address's own for an address)",
      ).choices(["auto", "4", "6", "both"] as const),
    )
    .option("--first-port <port>", "the user's first knock port F", intArg("port", 1, 65535))
    .option("--secret <base32>", "the user's TOTP secret (else $KNOCKGATE_SECRET or the profile)")
    .option("--profile <name>", "use a saved profile (options given override it)")
    .option(
      "--save-profile <name>",
      "save host, first port, secret, length, transport, family, then go on",
    )
    .option("--length <n>", `ports after F (default ${DEFAULT_LENGTH})`, intArg("length", 1, 8))
    .addOption(new Option("--transport <t>", "knock with tcp or udp (default tcp)").choices(
      ["tcp", "udp"] as const,
    ))
    .option(
      "--delay-ms <ms>",
      `pause between knocks, at least 20 (default ${DEFAULT_DELAY_MS})`,
      intArg("delay", 20, 60_000),
    )
    .option(
      "--then-connect <port>",
      "after knocking, try a TCP connection",
      intArg("port", 1, 65535),
    )
    .option("--print-sequence", "print the sequence (F included) and exit")
    .option("--time <unix>", "derive the sequence at this Unix time", intArg("time", 0, 2 ** 40))
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s.trimEnd()),
      writeErr: (s) => io.err(s.trimEnd()),
    });
}

type Options = ReturnType<ReturnType<typeof program>["opts"]>;

async function settingsFrom(opts: Options, io: KnockIo): Promise<KnockSettings> {
  const needPath = opts.profile !== undefined || opts.saveProfile !== undefined;
  const path = needPath ? profilesPath(io.env) : "";
  const base: Partial<SavedProfile> = opts.profile ? await loadProfile(path, opts.profile) : {};
  const s = {
    host: opts.host ?? base.host ?? "",
    firstPort: opts.firstPort ?? base.firstPort,
    secret: opts.secret ?? base.secret ?? io.env.get("KNOCKGATE_SECRET"),
    length: opts.length ?? base.length ?? DEFAULT_LENGTH,
    transport: (opts.transport ?? base.transport ?? "tcp") as ClientTransport,
    family:
      (opts.family ?? base.family ?? defaultFamily(opts.host ?? base.host ?? "")) as ClientFamily,
    delayMs: opts.delayMs ?? DEFAULT_DELAY_MS,
  };
  if (s.secret === undefined) {
    throw new UsageError("Cannot knock: --secret or --profile is required");
  }
  if (s.firstPort === undefined) {
    throw new UsageError("Cannot knock: --first-port or --profile is required");
  }
  if (s.host === "" && (!opts.printSequence || opts.saveProfile !== undefined)) {
    throw new UsageError("Cannot knock: --host or --profile is required");
  }
  base32Decode(s.secret); // throws a readable error on a bad secret
  if (s.host !== "") literalTarget(s.host, s.family); // a malformed or mismatched literal
  const settings = { ...s, secret: s.secret, firstPort: s.firstPort };
  if (opts.saveProfile !== undefined) {
    const { delayMs: _, family, ...rest } = settings;
    // "auto" is the default: a profile saved without it reads as before.
    const profile: SavedProfile = family === "auto" ? rest : { ...rest, family };
    await saveProfile(path, opts.saveProfile, profile);
    io.out(`saved profile ${opts.saveProfile} to ${path}`);
  }
  return settings;
}

/** "IPv4" or "IPv6". */
export function familyName(family: 4 | 6): string {
  return `IPv${family}`;
}

/** `address:port`, an IPv6 address in brackets (RFC 3986 §3.2.2). */
export function hostPort(t: KnockTarget, port: number): string {
  return t.family === 6 ? `[${t.address}]:${port}` : `${t.address}:${port}`;
}

/**
 * The family when none is given: an address's own, and IPv4 for a name.
 * The appliance watches knocks on its IPv4 WAN addresses only until its data
 * plane handles IPv6 (issue 13); `auto` would knock a dual-stack name over
 * IPv6, where nothing listens yet.
 */
export function defaultFamily(host: string): ClientFamily {
  return host !== "" && literalTarget(host) !== null ? "auto" : "4";
}

/**
 * The target a literal `host` names: a dotted quad, or IPv6 text with or
 * without brackets (`2001:db8::1`, `[2001:db8::1]`), normalised to RFC 5952;
 * an IPv4-mapped address (`::ffff:198.51.100.1`) is the IPv4 address it
 * carries, as its packets are IPv4 on the wire. Null for a host name.
 * Throws a usage error for a malformed literal, and for one whose family
 * `family` excludes (`both` takes a literal's one family).
 */
export function literalTarget(host: string, family: ClientFamily = "auto"): KnockTarget | null {
  let t: KnockTarget | null = null;
  if (/^([\d.]+|\[.*\]):\d+$/.test(host)) {
    throw new UsageError(`Cannot knock on "${host}": give the address without a port`);
  }
  const bracketed = /^\[(.*)\]$/.exec(host);
  if (bracketed !== null || host.includes(":")) {
    const text = bracketed?.[1] ?? host;
    const w = parseIpv6(text);
    if (w === null) {
      const zone = text.includes("%") ? " (zones such as %eth0 are not supported)" : "";
      throw new UsageError(`Cannot knock on "${host}": not an IPv6 address${zone}`);
    }
    t = isIpv4Mapped(w)
      ? { address: formatIpv4(w[3] >>> 0), family: 4 }
      : { address: formatIpv6(w), family: 6 };
  } else if (/^[\d.]+$/.test(host)) {
    const v4 = parseIpv4(host);
    if (v4 === null) {
      throw new UsageError(
        `Cannot knock on "${host}": not an IPv4 address (four numbers 0..255, no leading zeros)`,
      );
    }
    t = { address: formatIpv4(v4), family: 4 };
  }
  if (t !== null && (family === "4" || family === "6") && Number(family) !== t.family) {
    throw new UsageError(
      `Cannot knock on "${host}" over IPv${family}: it is an ${familyName(t.family)} address`,
    );
  }
  return t;
}

/**
 * The targets to knock for `host` given the resolver's `found` addresses (in
 * its order): `auto` the first, `4`/`6` the first of that family, `both` the
 * first of each family found, IPv4 first. Throws when none fits.
 */
export function pickTargets(
  host: string,
  family: ClientFamily,
  found: readonly KnockTarget[],
): KnockTarget[] {
  const v4 = found.find((t) => t.family === 4);
  const v6 = found.find((t) => t.family === 6);
  if (found.length === 0) throw new FamilyError(`Cannot knock on "${host}": it has no address`);
  if (family === "auto") return [found[0]];
  if (family === "both") return [v4, v6].filter((t) => t !== undefined);
  const want = family === "4" ? v4 : v6;
  if (want === undefined) {
    const record = family === "4" ? "A" : "AAAA";
    const has = found.map((t) => t.address).join(", ");
    throw new FamilyError(
      `Cannot knock on "${host}" over IPv${family}: it has no IPv${family} address ` +
        `(${record} record), only ${has}`,
    );
  }
  return [want];
}

/** getaddrinfo through node:dns, in the order it returns (`verbatim`, not IPv4 first). */
export const systemLookup: Lookup = async (host) => {
  const all = await dns.lookup(host, { all: true, order: "verbatim" });
  return all.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

/** The targets of `host` (a literal as is, a name through `lookup`) for `family`. */
export async function resolveTargets(
  host: string,
  family: ClientFamily,
  lookup: Lookup = systemLookup,
): Promise<KnockTarget[]> {
  const literal = literalTarget(host, family);
  if (literal !== null) return [literal];
  return pickTargets(host, family, await lookup(host));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * One TCP knock: starts a connection (the kernel sends the SYN), keeps the
 * attempt `holdMs`, then aborts it. A connection that opens anyway is closed.
 * Throws only when the SYN cannot have left (no route, no source address).
 */
export async function tcpKnock(ip: string, port: number, holdMs: number): Promise<void> {
  const abort = new AbortController();
  let unsent: Error | null = null;
  const attempt = Deno.connect({ hostname: ip, port, signal: abort.signal }).then(
    (conn) => conn.close(),
    (e) => {
      if (
        e instanceof Deno.errors.NetworkUnreachable || e instanceof Deno.errors.AddrNotAvailable
      ) {
        unsent = e;
      } // refused, unreachable host or aborted: all the same to a knock
    },
  );
  await sleep(holdMs);
  abort.abort();
  await attempt;
  if (unsent !== null) throw unsent;
}

/** Sends one UDP knock datagram from `socket`. */
function udpKnock(socket: dgram.Socket, ip: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.send(new Uint8Array([0]), port, ip, (err) => err ? reject(err) : resolve());
  });
}

/** Knocks `ports` on `target` in order, `delayMs` apart, printing each knock. */
export async function sendKnocks(
  target: KnockTarget,
  ports: readonly number[],
  transport: ClientTransport,
  delayMs: number,
  io: KnockIo,
): Promise<void> {
  const ip = target.address;
  const socket = transport === "udp"
    ? dgram.createSocket(target.family === 6 ? "udp6" : "udp4")
    : null;
  const family = familyName(target.family);
  try {
    for (let i = 0; i < ports.length; i++) {
      const last = i === ports.length - 1;
      io.out(`knock ${i + 1}/${ports.length} ${transport} ${hostPort(target, ports[i])} ${family}`);
      if (socket === null) {
        await tcpKnock(ip, ports[i], last ? Math.min(delayMs, LAST_SYN_HOLD_MS) : delayMs);
      } else {
        await udpKnock(socket, ip, ports[i]);
        if (!last) await sleep(delayMs);
      }
    }
  } finally {
    if (socket !== null) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

/** Tries a TCP connection with a timeout; returns null if it opened, else why not. */
export async function tryConnect(
  ip: string,
  port: number,
  timeoutMs: number,
): Promise<string | null> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    (await Deno.connect({ hostname: ip, port, signal: abort.signal })).close();
    return null;
  } catch (e) {
    return abort.signal.aborted ? `no answer within ${timeoutMs} ms` : (e as Error).message;
  } finally {
    clearTimeout(timer);
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Runs the client on `args`; resolves to the exit code. */
export async function main(args: string[], io: KnockIo = denoIo()): Promise<number> {
  const cmd = program(io);
  try {
    cmd.parse(taskArgs(args), { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    throw e;
  }
  const opts = cmd.opts();
  let s: KnockSettings;
  let ports: number[];
  try {
    s = await settingsFrom(opts, io);
    ports = await knockSequenceAt(s.secret, opts.time ?? Date.now() / 1000, s.firstPort, s.length);
  } catch (e) {
    io.err(message(e));
    return ExitCode.Usage;
  }
  if (opts.printSequence) {
    io.out(ports.join(" "));
    return ExitCode.Ok;
  }
  return await knockAndConnect(s, ports, opts.thenConnect, io);
}

/**
 * Knocks `ports` over each target of `s.host` (one for auto, 4 and 6; one
 * per family for both, IPv4 first, `delayMs` apart), then tries
 * `thenConnect` on each. Exit 0 only when every knock was sent and every
 * connection opened.
 */
async function knockAndConnect(
  s: KnockSettings,
  ports: number[],
  thenConnect: number | undefined,
  io: KnockIo,
): Promise<number> {
  let targets: KnockTarget[];
  try {
    targets = await resolveTargets(s.host, s.family);
  } catch (e) {
    if (e instanceof UsageError || e instanceof FamilyError) io.err(e.message);
    else io.err(`Cannot knock on "${s.host}": cannot resolve it: ${message(e)}`);
    return ExitCode.ConnectFailed;
  }
  if (literalTarget(s.host) === null) {
    const via = targets.map((t) => `${familyName(t.family)} ${t.address}`).join(", ");
    io.out(`${s.host}: knocking over ${via}`);
  }
  if (s.family === "both" && targets.length === 1) {
    const other = targets[0].family === 4 ? 6 : 4;
    io.err(`${s.host} has no IPv${other} address: knocking over IPv${targets[0].family} only`);
  }
  let code: number = ExitCode.Ok;
  const sent: KnockTarget[] = [];
  for (const [i, t] of targets.entries()) {
    if (i > 0) await sleep(s.delayMs);
    try {
      await sendKnocks(t, ports, s.transport, s.delayMs, io);
      sent.push(t);
      if (targets.length > 1) io.out(`sent ${ports.length} knocks over ${familyName(t.family)}`);
    } catch (e) {
      const hint = literalTarget(s.host) === null && s.family === "auto"
        ? " (--family 4 or 6 picks the family)"
        : "";
      io.err(`Cannot knock on ${t.address} over ${familyName(t.family)}: ${message(e)}${hint}`);
      code = ExitCode.ConnectFailed;
    }
  }
  if (thenConnect === undefined || sent.length === 0) return code;
  await sleep(CONNECT_WAIT_MS);
  for (const t of sent) {
    const why = await tryConnect(t.address, thenConnect, CONNECT_TIMEOUT_MS);
    const where = `connect ${hostPort(t, thenConnect)} ${familyName(t.family)}`;
    if (why === null) io.out(`${where} open`);
    else {
      io.out(`${where} failed: ${why}`);
      code = ExitCode.ConnectFailed;
    }
  }
  return code;
}

function denoIo(): KnockIo {
  return { out: (l) => console.log(l), err: (l) => console.error(l), env: Deno.env };
}

if (import.meta.main) Deno.exit(await main(Deno.args));
