/**
 * How the shell trusts the appliance's certificate, never by switching checks
 * off: a CA file (`--ca FILE`, for an operator's certificate), or a pinned
 * SHA-256 fingerprint of the self-signed one (`--fingerprint`, printed by the
 * appliance at start and shown by `GET /api/v1/tls`).
 *
 * A pin is checked once per use: a TLS handshake alone (no byte of HTTP is
 * sent) fetches the server's certificate, its SHA-256 is compared with the
 * pin, and only on a match is that certificate used as the one trust anchor
 * of Deno's fetch (`Deno.createHttpClient({ caCerts })`), which then checks
 * it in full (signature, validity, the URL's IP or name in its SANs) on every
 * request. `login` saves the pinned PEM, so later commands need no pin.
 */
import { X509Certificate } from "node:crypto";
import tls from "node:tls";
import { NetworkError } from "./api_client.ts";
import { UsageError } from "./io.ts";

const HANDSHAKE_TIMEOUT_MS = 10_000;

/** A fingerprint as `AA:BB:…` from `aabb…` or `AA:BB:…` (optionally `sha256:`); throws a UsageError. */
export function parseFingerprint(text: string): string {
  const hex = text.trim().replace(/^sha256[:=]?/i, "").replace(/[:\s]/g, "").toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) {
    throw new UsageError(`Cannot use fingerprint "${text}": it is not 32 hex bytes (SHA-256)`);
  }
  return hex.match(/../g)!.join(":");
}

function pemOf(der: Uint8Array): string {
  const b64 = btoa(String.fromCharCode(...der)).match(/.{1,64}/g)!.join("\n");
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/**
 * The certificate `url`'s server presents, from a bare handshake. Unverified
 * by design: the caller compares its fingerprint with a pin before using it.
 */
export function peerCertificate(url: string): Promise<{ pem: string; fingerprint: string }> {
  const u = new URL(url);
  const port = Number(u.port || 443);
  const host = u.hostname.replace(/^\[|\]$/g, "");
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host,
      port,
      // The pin, not a CA, decides; SNI only for names (not IP literals, RFC 6066 §3).
      rejectUnauthorized: false,
      servername: /^[\d.]+$|:/.test(host) ? undefined : host,
    }, () => {
      const raw = socket.getPeerCertificate(false)?.raw;
      socket.destroy();
      if (!raw) return reject(new NetworkError(`${u.origin} presented no certificate`));
      const pem = pemOf(new Uint8Array(raw));
      resolve({ pem, fingerprint: new X509Certificate(pem).fingerprint256 });
    });
    socket.setTimeout(HANDSHAKE_TIMEOUT_MS, () => {
      socket.destroy();
      reject(new NetworkError(`Cannot reach ${u.origin}: no TLS handshake within 10 s`));
    });
    socket.on("error", (e: Error) => {
      reject(new NetworkError(`Cannot reach ${u.origin}: ${e.message}`));
    });
  });
}

/** The server's certificate when its SHA-256 equals `fingerprint`; else a NetworkError. */
export async function pinnedCertificate(url: string, fingerprint: string): Promise<string> {
  const want = parseFingerprint(fingerprint);
  const got = await peerCertificate(url);
  if (got.fingerprint !== want) {
    throw new NetworkError(
      `Refusing ${
        new URL(url).origin
      }: its certificate's SHA-256 fingerprint is ${got.fingerprint}, ` +
        `not the pinned ${want}`,
    );
  }
  return got.pem;
}

/** Reads a CA file (PEM, one or more certificates); throws a UsageError naming it. */
export async function readCaFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new UsageError(`Cannot read CA file ${path}: ${(e as Error).message}`);
  }
  if (!text.includes("-----BEGIN CERTIFICATE-----")) {
    throw new UsageError(`Cannot use CA file ${path}: no PEM certificate in it`);
  }
  return text;
}

const clients = new Map<string, Deno.HttpClient>();

/** A fetch client trusting only `caPem` (one per PEM for the process); undefined: system roots. */
export function httpClientFor(caPem: string | undefined): Deno.HttpClient | undefined {
  if (caPem === undefined) return undefined;
  let c = clients.get(caPem);
  if (c === undefined) {
    c = Deno.createHttpClient({ caCerts: [caPem] });
    clients.set(caPem, c);
  }
  return c;
}
