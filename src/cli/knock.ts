/**
 * The knock client (`deno task knock`): derives the `portknock/v1` sequence
 * from a TOTP secret and knocks it on the appliance's WAN address, one TCP
 * SYN (a connection attempt abandoned at once) or UDP datagram per port.
 *
 *   deno task knock --host 198.51.100.1 --first-port 41001 --secret JBSW...
 *   deno task knock --profile home --then-connect 22
 *
 * Exit codes: 0 ok, 1 resolving, sending or `--then-connect` failed, 2 usage.
 */

import { Command, CommanderError, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import dgram from "node:dgram";
import dns from "node:dns/promises";
import { base32Decode } from "../knock/base32.ts";
import { knockSequenceAt } from "../knock/sequence.ts";
import { taskArgs } from "./task_args.ts";
import {
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
  delayMs: number;
}

const DEFAULT_LENGTH = 3;
const DEFAULT_DELAY_MS = 100;
/** Pause between the last knock and `--then-connect`, for the appliance to apply the unlock. */
const CONNECT_WAIT_MS = 300;
const CONNECT_TIMEOUT_MS = 3000;
/** How long the last TCP knock's attempt is kept before it is dropped. */
const LAST_SYN_HOLD_MS = 50;

class UsageError extends Error {}

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
    .option("--host <host>", "the appliance's WAN address or host name")
    .option("--first-port <port>", "the user's first knock port F", intArg("port", 1, 65535))
    .option("--secret <base32>", "the user's TOTP secret (else $KNOCKGATE_SECRET or the profile)")
    .option("--profile <name>", "use a saved profile (options given override it)")
    .option("--save-profile <name>", "save host, first port, secret, length, transport, then go on")
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
  const settings = { ...s, secret: s.secret, firstPort: s.firstPort };
  if (opts.saveProfile !== undefined) {
    const { delayMs: _, ...profile } = settings;
    await saveProfile(path, opts.saveProfile, profile);
    io.out(`saved profile ${opts.saveProfile} to ${path}`);
  }
  return settings;
}

/** The IPv4 address of `host` (a dotted quad as is, a name through the resolver). */
export async function resolveHost(host: string): Promise<string> {
  const quad = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (quad !== null && quad.slice(1).every((o) => Number(o) <= 255)) return host;
  return (await dns.lookup(host, { family: 4 })).address;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * One TCP knock: starts a connection (the kernel sends the SYN), keeps the
 * attempt `holdMs`, then aborts it. A connection that opens anyway is closed.
 */
export async function tcpKnock(ip: string, port: number, holdMs: number): Promise<void> {
  const abort = new AbortController();
  const attempt = Deno.connect({ hostname: ip, port, signal: abort.signal }).then(
    (conn) => conn.close(),
    () => {}, // refused, unreachable or aborted: all the same to a knock
  );
  await sleep(holdMs);
  abort.abort();
  await attempt;
}

/** Sends one UDP knock datagram from `socket`. */
function udpKnock(socket: dgram.Socket, ip: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.send(new Uint8Array([0]), port, ip, (err) => err ? reject(err) : resolve());
  });
}

/** Knocks `ports` on `ip` in order, `delayMs` apart, printing each knock. */
export async function sendKnocks(
  ip: string,
  ports: readonly number[],
  transport: ClientTransport,
  delayMs: number,
  io: KnockIo,
): Promise<void> {
  const socket = transport === "udp" ? dgram.createSocket("udp4") : null;
  try {
    for (let i = 0; i < ports.length; i++) {
      const last = i === ports.length - 1;
      io.out(`knock ${i + 1}/${ports.length} ${transport} ${ip}:${ports[i]}`);
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

async function knockAndConnect(
  s: KnockSettings,
  ports: number[],
  thenConnect: number | undefined,
  io: KnockIo,
): Promise<number> {
  let ip: string;
  try {
    ip = await resolveHost(s.host);
    await sendKnocks(ip, ports, s.transport, s.delayMs, io);
  } catch (e) {
    io.err(`Cannot knock on "${s.host}": ${message(e)}`);
    return ExitCode.ConnectFailed;
  }
  if (thenConnect === undefined) return ExitCode.Ok;
  await sleep(CONNECT_WAIT_MS);
  const why = await tryConnect(ip, thenConnect, CONNECT_TIMEOUT_MS);
  if (why === null) {
    io.out(`connect ${ip}:${thenConnect} open`);
    return ExitCode.Ok;
  }
  io.out(`connect ${ip}:${thenConnect} failed: ${why}`);
  return ExitCode.ConnectFailed;
}

function denoIo(): KnockIo {
  return { out: (l) => console.log(l), err: (l) => console.error(l), env: Deno.env };
}

if (import.meta.main) Deno.exit(await main(Deno.args));
