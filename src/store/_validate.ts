/** Small predicates shared by the repositories' validation. */

const OCTET = "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";

/** A dotted-quad IPv4 address without leading zeros, e.g. "192.0.2.1". */
export const DOTTED_QUAD_RE: RegExp = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);

/** A dotted quad with a prefix length, e.g. "192.0.2.1/24". */
export const CIDR_RE: RegExp = new RegExp(`^${OCTET}(\\.${OCTET}){3}/([0-9]|[12][0-9]|3[0-2])$`);

/** True when `v` is an integer in `min..max`. */
export function isInt(v: unknown, min: number, max: number): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
}

/** True when `v` is a dotted-quad IPv4 address. */
export function isDottedQuad(v: unknown): v is string {
  return typeof v === "string" && DOTTED_QUAD_RE.test(v);
}
