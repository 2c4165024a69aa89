/**
 * Shared pieces of the lab tests: when they can run, test configurations
 * derived from config/appliance.jsonc, bounded commands inside the lab's
 * namespaces, the appliance's status (SIGUSR2) and log, the knock client, and
 * hand-built IPv4 packets sent byte for byte.
 */
import assert from "node:assert/strict";
import type { Names, RunningLab } from "../../scripts/lab/appliance.ts";
import { LAB, type LabNames } from "../../scripts/lab/topology.ts";

/** The repository root (ends with a slash). */
export const ROOT = new URL("../../", import.meta.url).pathname;

/** The lab user of config/appliance.jsonc. */
export const ALICE = { secret: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", firstPort: 41001 } as const;

/** True when the lab can run here: root and a TUN device node. */
export function labSupported(): boolean {
  try {
    return Deno.uid() === 0 && Deno.statSync("/dev/net/tun") !== null;
  } catch {
    return false;
  }
}

/** Edits the default lab configuration may take; each is checked to apply. */
export interface ConfigEdits {
  /** WAN CIDRs admitted without knocking. */
  allow?: string[];
  /** Unlock idle timeout in seconds. */
  idleTimeoutSec?: number;
  /** Syslog collectors. */
  syslog?: { host: string; port: number; format: "rfc5424" | "rfc3164" }[];
  /** TUN queues (`tun.queues`), one data-plane Worker each. */
  queues?: number;
}

/** Replaces `from` in `text`, throwing when it is not there (the default config changed). */
function replaceOnce(text: string, from: string | RegExp, to: string): string {
  const out = text.replace(from, to);
  if (out === text) throw new Error(`Cannot derive a test config: ${from} not found`);
  return out;
}

/**
 * Writes a test configuration derived from config/appliance.jsonc with `edits`
 * and a private store path; returns the file (in a fresh temp dir to remove).
 */
export async function writeTestConfig(edits: ConfigEdits = {}): Promise<string> {
  let text = await Deno.readTextFile(`${ROOT}config/appliance.jsonc`);
  const dir = await Deno.makeTempDir({ prefix: "knockgate-labtest-" });
  text = replaceOnce(text, /"path":\s*"[^"]*"/, `"path": ${JSON.stringify(`${dir}/kg.kv`)}`);
  if (edits.allow) {
    text = replaceOnce(text, /"allow":\s*\[\]/, `"allow": ${JSON.stringify(edits.allow)}`);
  }
  if (edits.idleTimeoutSec !== undefined) {
    text = replaceOnce(
      text,
      /"idleTimeoutSeconds":\s*\d+/,
      `"idleTimeoutSeconds": ${edits.idleTimeoutSec}`,
    );
  }
  if (edits.syslog) {
    text = replaceOnce(text, /"syslog":\s*\[\]/, `"syslog": ${JSON.stringify(edits.syslog)}`);
  }
  if (edits.queues !== undefined) {
    text = replaceOnce(text, /"queues":\s*"auto"/, `"queues": ${edits.queues}`);
  }
  const file = `${dir}/appliance.jsonc`;
  await Deno.writeTextFile(file, text);
  return file;
}

/** Removes the temp dir of a file written by `writeTestConfig`. */
export async function removeTestConfig(file: string): Promise<void> {
  await Deno.remove(file.slice(0, file.lastIndexOf("/")), { recursive: true }).catch(() => {});
}

/** Keeps Deno programs in the lab from checking for updates (DNS queries through the appliance). */
const QUIET_DENO = { DENO_NO_UPDATE_CHECK: "1" };

/** The outcome of one command. */
export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `argv` in namespace `ns`, killed after `timeoutSec`; never throws. */
export async function sh<N extends Names<N>>(
  lab: RunningLab<N>,
  ns: keyof N,
  argv: string[],
  timeoutSec = 20,
  stdin?: Uint8Array,
): Promise<Result> {
  const cmd = new Deno.Command("ip", {
    args: ["netns", "exec", lab.names[ns], "timeout", "-k", "2", String(timeoutSec), ...argv],
    stdin: stdin ? "piped" : "null",
    env: QUIET_DENO,
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    await w.write(stdin).catch(() => {});
    await w.close().catch(() => {});
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Like `sh`, but throws with the output when the command fails. */
export async function shOk<N extends Names<N>>(
  lab: RunningLab<N>,
  ns: keyof N,
  argv: string[],
  timeoutSec = 20,
): Promise<string> {
  const r = await sh(lab, ns, argv, timeoutSec);
  if (r.code !== 0) {
    throw new Error(
      `Command failed (${r.code}) in ${String(ns)}: ${argv.join(" ")}\n${r.stdout}\n${r.stderr}`,
    );
  }
  return r.stdout;
}

/** A process left running in a namespace. */
export interface Background {
  child: Deno.ChildProcess;
  /** Its standard output so far (read continuously). */
  output(): string;
  /** Its standard error so far. */
  errors(): string;
  /** Writes `text` to its standard input (when started with `stdin: true`). */
  write(text: string): Promise<void>;
  /** Interrupts it (if still running) and returns its exit code and output. */
  stop(): Promise<Result>;
  /** Waits (at most `timeoutMs`) for it to exit on its own; then like `stop`. */
  finish(timeoutMs: number): Promise<Result>;
}

/** Starts `argv` in namespace `ns` in the background, killed after `timeoutSec` at the latest. */
export function spawnIn<N extends Names<N>>(
  lab: RunningLab<N>,
  ns: keyof N,
  argv: string[],
  timeoutSec = 60,
  opts: { stdin?: boolean } = {},
): Background {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", lab.names[ns], "timeout", "-k", "2", String(timeoutSec), ...argv],
    stdin: opts.stdin ? "piped" : "null",
    env: QUIET_DENO,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const dec = new TextDecoder();
  let out = "", err = "";
  const drain = async (s: ReadableStream<Uint8Array>, to: (t: string) => void) => {
    for await (const chunk of s) to(dec.decode(chunk, { stream: true }));
  };
  const done = Promise.all([
    drain(child.stdout, (t) => out += t),
    drain(child.stderr, (t) => err += t),
    child.status,
  ]).then(([, , st]) => ({ code: st.code, stdout: out, stderr: err }));
  const writer = opts.stdin ? child.stdin.getWriter() : null;
  const stop = async () => {
    try {
      // `timeout` passes the signal on to the command it runs.
      child.kill("SIGINT");
    } catch { /* already gone */ }
    await writer?.close().catch(() => {});
    return await done;
  };
  return {
    child,
    output: () => out,
    errors: () => err,
    write: async (text) => {
      if (!writer) throw new Error("started without stdin");
      await writer.write(new TextEncoder().encode(text));
    },
    stop,
    finish: async (timeoutMs) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<null>((r) => timer = setTimeout(() => r(null), timeoutMs));
      const r = await Promise.race([done, late]);
      clearTimeout(timer);
      return r ?? await stop();
    },
  };
}

/** The appliance's self-signed certificate (made at its first start): curl's `--cacert`. */
export function labCert<N extends Names<N>>(lab: RunningLab<N>): string {
  return `${lab.stateDir}/tls-cert.pem`;
}

/** Sleeps `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` every `stepMs` until it returns true or `timeoutMs` passes. */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  stepMs = 100,
): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await Promise.resolve(check()).catch(() => false)) return true;
    await sleep(stepMs);
  }
  return false;
}

/** The appliance log so far. */
export function readLog<N extends Names<N>>(lab: RunningLab<N>): Promise<string> {
  return Deno.readTextFile(lab.logFile);
}

/** Waits until the appliance log matches `re`; returns the matching line or null. */
export async function waitForLog<N extends Names<N>>(
  lab: RunningLab<N>,
  re: RegExp,
  timeoutMs = 5000,
): Promise<string | null> {
  let line: string | null = null;
  await until(async () => {
    line = (await readLog(lab)).split("\n").find((l) => re.test(l)) ?? null;
    return line !== null;
  }, timeoutMs);
  return line;
}

/** The pid of the appliance's Deno process (the one SIGUSR2 goes to). */
export async function appliancePid<N extends Names<N>>(lab: RunningLab<N>): Promise<number> {
  const r = await new Deno.Command("ip", { args: ["netns", "pids", lab.names.appliance] })
    .output();
  const pids = new TextDecoder().decode(r.stdout).split(/\s+/).filter(Boolean).map(Number);
  // `sh -c exec ip netns exec ... deno` execs all the way down: the child pid is Deno's.
  const own = lab.appliance?.pid;
  if (own !== undefined && pids.includes(own)) return own;
  for (const pid of pids) {
    const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
    if (cmdline.includes("mod.ts")) return pid;
  }
  throw new Error(`Cannot find the appliance process in ${lab.names.appliance}`);
}

/** The appliance's `status` line (SIGUSR2): counters, drops by reason, conntrack stats. */
export interface Status {
  stats: Record<string, number>;
  drops: Record<string, number>;
  conntrack: Record<string, number>;
  /** The TUN's counters (`TunStats`) and `offloads`; `queues`: each queue's. */
  device: Record<string, number> & { offloads?: string[]; queues?: Record<string, number>[] };
  /** Each data-plane Worker's stats, in TUN queue order. */
  queues: Record<string, number>[];
}

/** Sends SIGUSR2 and returns the status line it prints (within 5 s). */
export async function status<N extends Names<N>>(lab: RunningLab<N>): Promise<Status> {
  const count = async () => (await readLog(lab)).split("\n").filter((l) => l.startsWith("status "));
  const before = (await count()).length;
  Deno.kill(await appliancePid(lab), "SIGUSR2");
  let lines: string[] = [];
  const ok = await until(async () => (lines = await count()).length > before, 5000, 50);
  if (!ok) throw new Error("the appliance printed no status line within 5 s of SIGUSR2");
  return JSON.parse(lines[lines.length - 1].slice("status ".length)) as Status;
}

/**
 * Polls `status` until `done` holds for it (at most `timeoutMs`) and returns
 * the last status either way: the appliance handles packets asynchronously.
 */
export async function statusWhen<N extends Names<N>>(
  lab: RunningLab<N>,
  done: (s: Status) => boolean,
  timeoutMs = 5000,
): Promise<Status> {
  const end = Date.now() + timeoutMs;
  let s = await status(lab);
  while (!done(s) && Date.now() < end) {
    await sleep(200);
    s = await status(lab);
  }
  return s;
}

/** Polls `status` until its rx_packets stops moving for 500 ms (at most `timeoutMs`). */
export async function statusSettled<N extends Names<N>>(
  lab: RunningLab<N>,
  timeoutMs = 10000,
): Promise<Status> {
  const end = Date.now() + timeoutMs;
  let s = await status(lab);
  while (Date.now() < end) {
    await sleep(500);
    const next = await status(lab);
    if (next.stats.rx_packets === s.stats.rx_packets) return next;
    s = next;
  }
  return s;
}

/** The growth of drop reason `reason` between two statuses. */
export function dropDelta(a: Status, b: Status, reason: string): number {
  return (b.drops[reason] ?? 0) - (a.drops[reason] ?? 0);
}

/** Runs the knock client in `ns` against `host` with `args` after the host, first port and secret. */
export function knock<N extends Names<N>>(
  lab: RunningLab<N>,
  ns: keyof N,
  args: string[] = [],
  user: { secret: string; firstPort: number } = ALICE,
  host: string = LAB.wan,
): Promise<Result> {
  return sh(lab, ns, [
    Deno.execPath(),
    "run",
    "-A",
    `${ROOT}src/cli/knock.ts`,
    "--host",
    host,
    "--first-port",
    String(user.firstPort),
    "--secret",
    user.secret,
    ...args,
  ], 30);
}

/** curl inside `ns`: the body on success, null on any failure (bounded by `maxTimeSec`). */
export async function curl<N extends Names<N>>(
  lab: RunningLab<N>,
  ns: keyof N,
  url: string,
  maxTimeSec = 5,
): Promise<string | null> {
  const r = await sh(lab, ns, ["curl", "-sS", "-m", String(maxTimeSec), url], maxTimeSec + 5);
  return r.code === 0 ? r.stdout : null;
}

/** nmap's verdict per TCP port (`open`, `filtered`, `closed`), scanning `ports` of the WAN address. */
export async function nmapStates(
  lab: RunningLab,
  ns: keyof LabNames,
  ports: number[],
): Promise<Record<number, string>> {
  const out = await shOk(lab, ns, [
    "nmap",
    "-Pn",
    "-n",
    "-sS",
    // Bounded but patient: a SYN-ACK late on a busy host must not read as "filtered".
    "--max-retries",
    "2",
    "--max-rtt-timeout",
    "1000ms",
    "--host-timeout",
    "30s",
    "-p",
    ports.join(","),
    "-oG",
    "-",
    LAB.wan,
  ], 45);
  const states: Record<number, string> = {};
  // Grepable output: "Ports: 52201/open/tcp//unknown///, 52204/filtered/tcp//..."
  for (const m of out.matchAll(/(\d+)\/(open|filtered|closed|open\|filtered)\/tcp/g)) {
    states[Number(m[1])] = m[2];
  }
  return states;
}

// ---- hand-built packets -------------------------------------------------------

/** The Internet checksum of `b` (RFC 1071) with `initial` already summed in. */
export function checksum(b: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < b.length; i += 2) sum += (b[i] << 8) | b[i + 1];
  if (b.length % 2 === 1) sum += b[b.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function ipBytes(a: string): number[] {
  return a.split(".").map(Number);
}

/** Fields of a hand-built IPv4 packet; anything left out is made well formed. */
export interface Ipv4Spec {
  src: string;
  dst: string;
  proto: number;
  payload: Uint8Array;
  /** IP options (padded by the caller to a multiple of 4). */
  options?: Uint8Array;
  /** Overrides the IHL field (32-bit words). */
  ihl?: number;
  /** Overrides the total length field. */
  totalLen?: number;
  /** Corrupts the header checksum. */
  badChecksum?: boolean;
  ident?: number;
  /** Flags and fragment offset word (e.g. 0x2000 for more fragments). */
  fragWord?: number;
}

/** Builds an IPv4 packet from `s`. */
export function ipv4(s: Ipv4Spec): Uint8Array {
  const opts = s.options ?? new Uint8Array(0);
  const hl = 20 + opts.length;
  const p = new Uint8Array(hl + s.payload.length);
  const v = new DataView(p.buffer);
  p[0] = 0x40 | (s.ihl ?? hl / 4);
  v.setUint16(2, s.totalLen ?? p.length);
  v.setUint16(4, s.ident ?? 0x4242);
  v.setUint16(6, s.fragWord ?? 0);
  p[8] = 64;
  p[9] = s.proto;
  p.set(ipBytes(s.src), 12);
  p.set(ipBytes(s.dst), 16);
  p.set(opts, 20);
  const c = checksum(p.subarray(0, hl));
  v.setUint16(10, s.badChecksum ? c ^ 0x5a5a : c);
  p.set(s.payload, hl);
  return p;
}

function pseudoSum(src: string, dst: string, proto: number, len: number): number {
  const [a, b] = [ipBytes(src), ipBytes(dst)];
  return ((a[0] << 8) | a[1]) + ((a[2] << 8) | a[3]) + ((b[0] << 8) | b[1]) +
    ((b[2] << 8) | b[3]) + proto + len;
}

/** A TCP segment from `src`:`sport` to `dst`:`dport` with a correct checksum. */
export function tcpSegment(
  src: string,
  sport: number,
  dst: string,
  dport: number,
  opts: { flags?: number; dataOffset?: number; payload?: Uint8Array } = {},
): Uint8Array {
  const payload = opts.payload ?? new Uint8Array(0);
  const t = new Uint8Array(20 + payload.length);
  const v = new DataView(t.buffer);
  v.setUint16(0, sport);
  v.setUint16(2, dport);
  v.setUint32(4, 0x01020304);
  t[12] = (opts.dataOffset ?? 5) << 4;
  t[13] = opts.flags ?? 0x02; // SYN
  v.setUint16(14, 64240);
  t.set(payload, 20);
  v.setUint16(16, checksum(t, pseudoSum(src, dst, 6, t.length)));
  return t;
}

/** A UDP datagram with a correct checksum; `lengthField` overrides the UDP length. */
export function udpDatagram(
  src: string,
  sport: number,
  dst: string,
  dport: number,
  payload: Uint8Array,
  lengthField?: number,
): Uint8Array {
  const u = new Uint8Array(8 + payload.length);
  const v = new DataView(u.buffer);
  v.setUint16(0, sport);
  v.setUint16(2, dport);
  v.setUint16(4, lengthField ?? u.length);
  u.set(payload, 8);
  const c = checksum(u, pseudoSum(src, dst, 17, u.length));
  v.setUint16(6, c === 0 ? 0xffff : c);
  return u;
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** The MAC address of `dev` in namespace `ns`. */
export async function macOf(lab: RunningLab, ns: keyof LabNames, dev: string): Promise<string> {
  const out = await shOk(lab, ns, ["ip", "-j", "link", "show", "dev", dev]);
  return (JSON.parse(out) as { address: string }[])[0].address;
}

/** Sends `packets` byte for byte from `ns`'s eth0 to the appliance's WAN port. */
export async function rawSend(
  lab: RunningLab,
  ns: "client" | "client2",
  packets: Uint8Array[],
): Promise<void> {
  const mac = await macOf(lab, "appliance", "wan0");
  await shOk(lab, ns, [
    Deno.execPath(),
    "run",
    "-A",
    `${ROOT}tests/lab/_raw_send.ts`,
    "eth0",
    mac,
    ...packets.map(hex),
  ], 30);
}

/** The kernel's IP counters in namespace `ns` (nstat, absolute values). */
export async function kernelCounters(
  lab: RunningLab,
  ns: keyof LabNames,
): Promise<Record<string, number>> {
  const out = await shOk(lab, ns, ["nstat", "-asz", "--json"]);
  const j = JSON.parse(out) as { kernel: Record<string, number> };
  return j.kernel;
}

/**
 * Runs hping3 in `ns` against the WAN address and returns how many packets it
 * sent (it exits 1 when nothing answers, which is what the tests want).
 */
export async function hping(
  lab: RunningLab,
  ns: keyof LabNames,
  args: string[],
  timeoutSec = 20,
): Promise<number> {
  const r = await sh(lab, ns, ["hping3", ...args, LAB.wan], timeoutSec);
  const m = (r.stdout + r.stderr).match(/(\d+) packets transmitted/);
  if (!m) throw new Error(`hping3 ${args.join(" ")} failed (${r.code}): ${r.stdout}\n${r.stderr}`);
  return Number(m[1]);
}

/** What `spoofSyns` sends: see tests/lab/_spoof_flood.ts. */
export interface SpoofSpec {
  dst: string;
  sources: { first: string; count: number };
  ports: number[];
  repeat?: number;
  pps?: number;
}

/** What `spoofSyns` sent. */
export interface SpoofResult {
  sent: number;
  errors: number;
  sources: number;
  seconds: number;
}

/** Sends SYNs with spoofed sources per `spec` from `ns`'s eth0 to the appliance's WAN port. */
export async function spoofSyns(
  lab: RunningLab,
  ns: "client" | "client2",
  spec: SpoofSpec,
  timeoutSec = 60,
): Promise<SpoofResult> {
  const out = await shOk(lab, ns, [
    Deno.execPath(),
    "run",
    "-A",
    `${ROOT}tests/lab/_spoof_flood.ts`,
    "eth0",
    await macOf(lab, "appliance", "wan0"),
    JSON.stringify(spec),
  ], timeoutSec);
  return JSON.parse(out.trim().split("\n").pop()!);
}

/** Escapes `s` for a RegExp. */
export function re(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Alice's sequence (F first) for time step `step`, from the knock client. */
export async function sequenceAt(step: number): Promise<number[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}src/cli/knock.ts`,
      "--first-port",
      String(ALICE.firstPort),
      "--secret",
      ALICE.secret,
      "--print-sequence",
      "--time",
      String(step * 30),
    ],
  }).output();
  return new TextDecoder().decode(out.stdout).trim().split(/\s+/).map(Number);
}

/** Waits until an `_echo_stream.ts connect` printed `echoed total`; fails with its output otherwise. */
export async function echoed(stream: Background, total: number, name: string): Promise<void> {
  const ok = await until(
    () => stream.output().includes(`echoed ${total}\n`) || stream.output().includes("broken"),
    120_000,
    50,
  );
  assert.ok(
    ok && stream.output().includes(`echoed ${total}\n`),
    `${name}: ${stream.output()}${stream.errors()}`,
  );
}

/** `/metrics` as a scraper on the LAN gets it with `token` (the lab's CA); throws on a failed fetch. */
export async function scrapeMetrics<N extends Names<N>>(
  lab: RunningLab<N>,
  token: string,
): Promise<string> {
  const r = await sh(lab, "server" as keyof N, [
    "curl",
    "--cacert",
    labCert(lab),
    "-sS",
    "-m",
    "10",
    "-H",
    `Authorization: Bearer ${token}`,
    `https://${LAB.lan}:8443/metrics`,
  ], 15);
  if (r.code !== 0) throw new Error(`Cannot scrape /metrics: ${r.stderr}`);
  return r.stdout;
}

/** A client address in a second /64 (2001:db8:204::/64), outside the lab's client prefix. */
export const CLIENT6_OTHER = "2001:db8:204::10";

/**
 * Gives the dual-stack lab's client `CLIENT6_OTHER` as well (deprecated, so
 * used only by a socket that binds it) and routes its /64 from the
 * appliance to the WAN: a second subscriber's prefix for the /64 policy.
 */
export async function addOtherClientPrefix6<N extends Names<N>>(
  lab: RunningLab<N>,
  client: keyof N,
  appliance: keyof N,
): Promise<void> {
  const addr = ["ip", "-6", "addr", "add", `${CLIENT6_OTHER}/64`, "dev", "eth0", "nodad"];
  await shOk(lab, client, [...addr, "preferred_lft", "0"]);
  await shOk(lab, appliance, ["ip", "-6", "route", "add", "2001:db8:204::/64", "dev", "wan0"]);
}
