/**
 * The management listener's certificate and key.
 *
 * A self-signed certificate is made with the system's `openssl` (Debian's
 * `openssl` package, installed by scripts/setup.sh): it is already on every
 * Debian host, is maintained with security updates, and keeps X.509 encoding
 * out of our code and out of npm dependencies. Parsing and checking a PEM pair
 * (fingerprint, SANs, expiry, key matches certificate) uses Deno's
 * `node:crypto` `X509Certificate`, which needs no subprocess.
 *
 * The certificate is an end-entity certificate (`CA:FALSE`, `serverAuth`) for
 * the appliance's IP addresses as SANs: rustls/webpki clients (Deno's fetch
 * with `caCerts: [pem]`) accept such a self-signed certificate as its own
 * trust anchor, but refuse a `CA:TRUE` one as an end entity.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { dirname } from "node:path";
import { run } from "./run.ts";

/** Validity of a generated certificate (825 days: the longest Apple clients accept). */
export const SELF_SIGNED_DAYS = 825;
/** Subject common name of a generated certificate. */
export const SELF_SIGNED_CN = "knockgate";

/** A certificate and key in PEM. */
export interface PemPair {
  cert: string;
  key: string;
}

/** What a client sees of a certificate. */
export interface CertInfo {
  /** SHA-256 of the DER certificate, upper-case hex pairs joined by `:` (as openssl and Node print it). */
  fingerprint: string;
  subject: string;
  issuer: string;
  /** SANs as Node formats them: `IP Address:192.0.2.1`, `IP Address:2001:db8::1`, `DNS:name`. */
  subjectAltNames: string[];
  notBefore: number;
  notAfter: number;
  /** Issuer equals subject. */
  selfSigned: boolean;
}

/** Where the appliance keeps its certificate and key: beside the KV store. */
export function tlsPaths(storePath: string): { cert: string; key: string } {
  const dir = dirname(storePath);
  return { cert: `${dir}/tls-cert.pem`, key: `${dir}/tls-key.pem` };
}

/** A fingerprint as `AA:BB:…` from any spelling (`aabb…`, `sha256/…` excluded); null when not 32 bytes. */
export function normalizeFingerprint(text: string): string | null {
  const hex = text.trim().replace(/^sha256[:=]?/i, "").replace(/[:\s]/g, "").toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) return null;
  return hex.match(/../g)!.join(":");
}

/** Facts about the certificate in `pem`, or an error message when it is not one. */
export function certInfo(pem: string): CertInfo | string {
  let c: X509Certificate;
  try {
    c = new X509Certificate(pem);
  } catch (e) {
    return `not a PEM certificate: ${(e as Error).message}`;
  }
  return {
    fingerprint: c.fingerprint256,
    subject: c.subject,
    issuer: c.issuer,
    subjectAltNames: (c.subjectAltName ?? "").split(/,\s*/).filter((s) => s !== ""),
    notBefore: c.validFromDate.getTime(),
    notAfter: c.validToDate.getTime(),
    selfSigned: c.subject === c.issuer,
  };
}

/**
 * Checks an operator's pair: the certificate parses, is valid at `now` and
 * the key is its private key. Returns its facts or the reason it is refused.
 */
export function validatePair(pair: PemPair, now: number): CertInfo | string {
  const info = certInfo(pair.cert);
  if (typeof info === "string") return info;
  if (now < info.notBefore) return `the certificate is not valid before ${iso(info.notBefore)}`;
  if (now >= info.notAfter) return `the certificate expired on ${iso(info.notAfter)}`;
  let matches: boolean;
  try {
    matches = new X509Certificate(pair.cert).checkPrivateKey(createPrivateKey(pair.key));
  } catch (e) {
    return `not a PEM private key: ${(e as Error).message}`;
  }
  return matches ? info : "the key does not belong to the certificate";
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * True when the certificate names `ip` in its SANs: a dotted quad, or an IPv6
 * address in RFC 5952 text (how Node prints an IPv6 SAN, and how the
 * configuration's addresses are normalised).
 */
export function coversIp(info: CertInfo, ip: string): boolean {
  return info.subjectAltNames.includes(`IP Address:${ip}`);
}

/** Writes `pair` (key 0600 first, then the certificate), each atomically by rename. */
export async function writePair(paths: { cert: string; key: string }, pair: PemPair) {
  await Deno.mkdir(dirname(paths.key), { recursive: true });
  for (
    const [path, text, mode] of [[paths.key, pair.key, 0o600], [
      paths.cert,
      pair.cert,
      0o644,
    ]] as const
  ) {
    const tmp = `${path}.${Deno.pid}.tmp`;
    await Deno.writeTextFile(tmp, text, { mode });
    await Deno.chmod(tmp, mode);
    await Deno.rename(tmp, path);
  }
}

/** Makes an ECDSA P-256 key and a self-signed certificate for `ips` with openssl. */
export async function generateSelfSigned(ips: string[], days = SELF_SIGNED_DAYS): Promise<PemPair> {
  const dir = await Deno.makeTempDir({ prefix: "knockgate-tls-" });
  try {
    const key = `${dir}/key.pem`, cert = `${dir}/cert.pem`;
    const r = await run([
      "openssl",
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      String(days),
      "-subj",
      `/CN=${SELF_SIGNED_CN}`,
      "-addext",
      `subjectAltName=${[...new Set(ips)].map((ip) => `IP:${ip}`).join(",")}`,
      "-addext",
      "basicConstraints=critical,CA:FALSE",
      "-addext",
      "keyUsage=critical,digitalSignature",
      "-addext",
      "extendedKeyUsage=serverAuth",
    ]);
    if (r.code !== 0) throw new Error(`openssl req: ${r.stderr.trim()}`);
    return { cert: await Deno.readTextFile(cert), key: await Deno.readTextFile(key) };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The pair the listener uses and where it came from. */
export interface ActiveTls extends PemPair {
  info: CertInfo;
  /** `config`: the file's `tls` paths; `store`: the pair beside the store; `generated`: made now. */
  source: "config" | "store" | "generated";
  paths: { cert: string; key: string };
}

/**
 * The pair to serve: the configuration's files when given (refused when
 * invalid), else the pair beside the store, else a new self-signed one. A
 * self-signed pair beside the store is made again when it has expired or no
 * longer names one of `ips` (the addresses changed); an operator's is kept.
 */
export async function loadOrCreateTls(
  opts: { configured?: { cert: string; key: string }; storePath: string; ips: string[] },
  now = Date.now(),
): Promise<ActiveTls> {
  if (opts.configured) {
    const pair = await readPair(opts.configured);
    const info = validatePair(pair, now);
    if (typeof info === "string") throw new Error(`tls.cert ${opts.configured.cert}: ${info}`);
    return { ...pair, info, source: "config", paths: opts.configured };
  }
  const paths = tlsPaths(opts.storePath);
  const existing = await readPair(paths).catch(() => null);
  if (existing) {
    const info = validatePair(existing, now);
    if (typeof info !== "string") {
      const own = info.selfSigned && info.subject === `CN=${SELF_SIGNED_CN}`;
      if (!own || opts.ips.every((ip) => coversIp(info, ip))) {
        return { ...existing, info, source: "store", paths };
      }
    }
    // An invalid or expired pair is replaced too: serving nothing would lock everyone out.
  }
  const pair = await generateSelfSigned(opts.ips);
  await writePair(paths, pair);
  // Checked at the time it was made: openssl starts its validity at the current second.
  const info = validatePair(pair, Math.max(now, Date.now()));
  if (typeof info === "string") throw new Error(`the generated certificate: ${info}`);
  return { ...pair, info, source: "generated", paths };
}

async function readPair(paths: { cert: string; key: string }): Promise<PemPair> {
  return { cert: await Deno.readTextFile(paths.cert), key: await Deno.readTextFile(paths.key) };
}
