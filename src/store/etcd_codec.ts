/**
 * Deno KV keys and values as etcd bytes.
 *
 * Keys: a tuple key becomes one byte string that sorts in etcd (plain byte
 * order) exactly as Deno KV sorts tuples: element by element, and across
 * types Uint8Array < string < bigint < number < false < true. Each element
 * is a type byte and its payload, in the manner of FoundationDB's tuple
 * layer:
 * - bytes `0x01` and string `0x02` (UTF-8): 0x00 escaped as 0x00 0xFF, ended
 *   by 0x00 (so "a" sorts before "a\0" before "ab");
 * - bigint `0x03`: a length byte (0x80 + n for >= 0, 0x7f - n below 0) then
 *   the n-byte magnitude, inverted below 0;
 * - number `0x04`: the IEEE 754 double big-endian, sign bit flipped for
 *   positives and every bit flipped for negatives (so byte order is numeric
 *   order; -0 and 0 stay distinct as in Deno KV);
 * - false `0x05`, true `0x06`.
 * Every type byte is below 0xff, so the children of a prefix P are the range
 * [P 0x00, P 0xff).
 *
 * Values: JSON, with the few non-JSON values the repositories could hand us
 * tagged (`{"\u0000": "u8", "v": base64}` for a Uint8Array, `"n"` for a
 * bigint, `"d"` for a Date, `"f"` for NaN and the infinities). A property
 * whose value is undefined is dropped (JSON's rule; Deno KV would keep it).
 * Map, Set, RegExp and class instances are refused with a TypeError.
 */
import { fromBase64, toBase64 } from "./_ids.ts";

const BYTES = 0x01;
const STRING = 0x02;
const BIGINT = 0x03;
const NUMBER = 0x04;
const FALSE = 0x05;
const TRUE = 0x06;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

class ByteWriter {
  #buf = new Uint8Array(64);
  #len = 0;

  byte(b: number): void {
    this.#reserve(1);
    this.#buf[this.#len++] = b;
  }

  bytes(src: Uint8Array): void {
    this.#reserve(src.length);
    this.#buf.set(src, this.#len);
    this.#len += src.length;
  }

  done(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }
}

function writeEscaped(w: ByteWriter, bytes: Uint8Array): void {
  for (const b of bytes) {
    w.byte(b);
    if (b === 0x00) w.byte(0xff);
  }
  w.byte(0x00);
}

function writeNumber(w: ByteWriter, n: number): void {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, n);
  const b = new Uint8Array(view.buffer);
  if ((b[0] & 0x80) === 0) b[0] ^= 0x80;
  else for (let i = 0; i < 8; i++) b[i] ^= 0xff;
  w.bytes(b);
}

function writeBigint(w: ByteWriter, n: bigint): void {
  const negative = n < 0n;
  let hex = (negative ? -n : n).toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  const len = n === 0n ? 0 : hex.length / 2;
  if (len > 0x7f) throw new TypeError(`Cannot encode key: bigint ${n} is longer than 127 bytes`);
  w.byte(negative ? 0x7f - len : 0x80 + len);
  for (let i = 0; i < len; i++) {
    const b = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
    w.byte(negative ? b ^ 0xff : b);
  }
}

/** The encoded tuple `key`, without any cluster prefix. */
export function encodeKey(key: Deno.KvKey): Uint8Array {
  const w = new ByteWriter();
  for (const part of key) {
    if (part instanceof Uint8Array) {
      w.byte(BYTES);
      writeEscaped(w, part);
    } else if (typeof part === "string") {
      w.byte(STRING);
      writeEscaped(w, utf8.encode(part));
    } else if (typeof part === "number") {
      w.byte(NUMBER);
      writeNumber(w, part);
    } else if (typeof part === "bigint") {
      w.byte(BIGINT);
      writeBigint(w, part);
    } else if (typeof part === "boolean") {
      w.byte(part ? TRUE : FALSE);
    } else {
      throw new TypeError(`Cannot encode key: ${typeof part} is not a key part`);
    }
  }
  return w.done();
}

function readEscaped(b: Uint8Array, at: number): [Uint8Array, number] {
  const out = new ByteWriter();
  for (let i = at; i < b.length; i++) {
    if (b[i] !== 0x00) {
      out.byte(b[i]);
    } else if (b[i + 1] === 0xff) {
      out.byte(0x00);
      i++;
    } else {
      return [out.done(), i + 1];
    }
  }
  throw new TypeError("Cannot decode key: an unterminated string or bytes part");
}

/** The tuple of an encoded key (the inverse of `encodeKey`). */
export function decodeKey(b: Uint8Array): Deno.KvKey {
  const out: Deno.KvKeyPart[] = [];
  let i = 0;
  while (i < b.length) {
    const type = b[i++];
    if (type === BYTES || type === STRING) {
      const [bytes, next] = readEscaped(b, i);
      out.push(type === BYTES ? bytes : utf8Decoder.decode(bytes));
      i = next;
    } else if (type === NUMBER) {
      if (i + 8 > b.length) throw new TypeError("Cannot decode key: a short number part");
      const n = b.slice(i, i + 8);
      if ((n[0] & 0x80) !== 0) n[0] ^= 0x80;
      else for (let j = 0; j < 8; j++) n[j] ^= 0xff;
      out.push(new DataView(n.buffer).getFloat64(0));
      i += 8;
    } else if (type === BIGINT) {
      const head = b[i++];
      const negative = head < 0x80;
      const len = negative ? 0x7f - head : head - 0x80;
      let hex = "";
      for (let j = 0; j < len; j++) {
        hex += (negative ? b[i + j] ^ 0xff : b[i + j]).toString(16).padStart(2, "0");
      }
      const mag = len === 0 ? 0n : BigInt(`0x${hex}`);
      out.push(negative ? -mag : mag);
      i += len;
    } else if (type === FALSE || type === TRUE) {
      out.push(type === TRUE);
    } else {
      throw new TypeError(`Cannot decode key: unknown part type 0x${type?.toString(16)}`);
    }
  }
  return out;
}

/** The smallest byte string after every key that starts with `prefix`'s children. */
export function childrenEnd(prefix: Uint8Array): Uint8Array {
  return concatBytes(prefix, Uint8Array.of(0xff));
}

/** The first key of `prefix`'s children. */
export function childrenStart(prefix: Uint8Array): Uint8Array {
  return concatBytes(prefix, Uint8Array.of(0x00));
}

/** `a` then `b`. */
export function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Negative, zero or positive as `a` sorts before, with or after `b` (unsigned bytes). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

const TAG = "\u0000";

function tagged(kind: string, v: string): Record<string, string> {
  return { [TAG]: kind, v };
}

function toJsonable(value: unknown, path: string): unknown {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") {
    return Number.isFinite(value) ? value : tagged("f", String(value));
  }
  if (typeof value === "bigint") return tagged("n", value.toString());
  if (value instanceof Uint8Array) return tagged("u8", toBase64(value));
  if (value instanceof Date) return tagged("d", value.toISOString());
  if (Array.isArray(value)) return value.map((v, i) => toJsonable(v ?? null, `${path}[${i}]`));
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v !== undefined) out[k] = toJsonable(v, `${path}.${k}`);
    }
    return out;
  }
  throw new TypeError(
    `Cannot store value: ${path || "the value"} is a ${typeof value} of no JSON form`,
  );
}

function fromJsonable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(fromJsonable);
  if (value === null || typeof value !== "object") return value;
  const o = value as Record<string, unknown>;
  if (typeof o[TAG] === "string" && typeof o.v === "string" && Object.keys(o).length === 2) {
    switch (o[TAG]) {
      case "u8":
        return fromBase64(o.v);
      case "n":
        return BigInt(o.v);
      case "d":
        return new Date(o.v);
      case "f":
        return Number(o.v);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k] = fromJsonable(v);
  return out;
}

/** `value` as the UTF-8 JSON text stored in etcd. */
export function encodeValue(value: unknown): Uint8Array {
  if (value === undefined) throw new TypeError("Cannot store value: undefined");
  return utf8.encode(JSON.stringify(toJsonable(value, "")));
}

/** The value of stored bytes (the inverse of `encodeValue`). */
export function decodeValue(bytes: Uint8Array): unknown {
  return fromJsonable(JSON.parse(utf8Decoder.decode(bytes)));
}

/** A Deno KV style versionstamp (20 hex digits) of an etcd revision. */
export function versionstampOf(revision: number): string {
  return revision.toString(16).padStart(20, "0");
}

/** The etcd revision of a versionstamp made by `versionstampOf`; NaN if it is not one. */
export function revisionOf(versionstamp: string): number {
  return /^[0-9a-f]{20}$/.test(versionstamp) ? parseInt(versionstamp, 16) : NaN;
}
