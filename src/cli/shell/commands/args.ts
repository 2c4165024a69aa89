/**
 * Parsers of command arguments. They check syntax only; ranges and
 * addresses are the API's to judge, so its message (naming the field)
 * is what the user sees.
 */
import { InvalidArgumentError } from "@commander-js/extra-typings";
import { UsageError } from "../io.ts";

/** An inclusive port range as the API takes it. */
export interface PortRange {
  start: number;
  end: number;
}

/** A commander parser of an integer in `min..max`. */
export function intArg(what: string, min: number, max: number): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!/^-?\d+$/.test(v) || n < min || n > max) {
      throw new InvalidArgumentError(`${what} ${v} is not an integer in ${min}..${max}`);
    }
    return n;
  };
}

/** A commander parser of a comma-separated list (`a,b,c`; empty for none). */
export function listArg(v: string): string[] {
  return v.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

/** `52201` or `52210-52219` as a range; throws a UsageError when it is neither. */
export function parsePorts(text: string, what: string): PortRange {
  const m = /^(\d{1,9})(?:-(\d{1,9}))?$/.exec(text.trim());
  if (m === null) {
    throw new UsageError(`Cannot parse ${what} "${text}": expected a port (80) or a range (80-89)`);
  }
  const start = Number(m[1]);
  return { start, end: m[2] === undefined ? start : Number(m[2]) };
}

/**
 * `192.0.2.12` or `192.0.2.12:8080` or `192.0.2.12:8080-8089`; an IPv6 host
 * bare (`2001:db8::12`) or in brackets before its ports (`[2001:db8::12]:8080`,
 * RFC 5952 §6).
 */
export function parseTarget(text: string): { address: string; ports?: PortRange } {
  const v6 = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
  if (v6 !== null) {
    const ports = v6[2] === undefined ? {} : { ports: parsePorts(v6[2], "private ports") };
    return { address: v6[1], ...ports };
  }
  if (text.indexOf(":") !== text.lastIndexOf(":")) return { address: text }; // bare IPv6
  const i = text.lastIndexOf(":");
  if (i === -1) return { address: text };
  return { address: text.slice(0, i), ports: parsePorts(text.slice(i + 1), "private ports") };
}

/** Protocols of a rule entry. */
export type Protocol = "tcp" | "udp" | "both";

/** `tcp:22,udp:53,both:60000-60010,80` (protocol defaults to tcp) as open-ports entries. */
export function parsePortList(text: string): { protocol: Protocol; ports: PortRange }[] {
  const entries = listArg(text);
  if (entries.length === 0) throw new UsageError("Cannot parse --ports: no ports given");
  return entries.map((e) => {
    const m = /^(?:(tcp|udp|both):)?(.*)$/.exec(e)!;
    return { protocol: (m[1] ?? "tcp") as Protocol, ports: parsePorts(m[2], "ports") };
  });
}
