/**
 * The appliance configuration: `config/appliance.jsonc` parsed (JSONC with
 * line tracking), validated (zod, then checks across fields) and typed.
 *
 * ```ts
 * const config = loadConfig("config/appliance.jsonc"); // throws ConfigError naming file:line
 * ```
 */

export * from "./defaults.ts";
export * from "./load.ts";
export * from "./parse_jsonc.ts";
export * from "./reload.ts";
export * from "./schema.ts";
export * from "./types.ts";
export * from "./uplinks.ts";
