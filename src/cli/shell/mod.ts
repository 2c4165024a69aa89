/**
 * The admin shell (`deno task shell`): speaks HTTP to the appliance's
 * management API only. One-shot (`deno task shell -- users list --json`)
 * or interactive (no command: a `knockgate> ` prompt with completion and
 * history).
 *
 * ```ts
 * import { main } from "./mod.ts";
 * Deno.exit(await main(["--url", "https://192.0.2.1:8443", "exec", "portknock"]));
 * ```
 */
export * from "./api_client.ts";
export type * from "./api_types.ts";
export * from "./completion.ts";
export * from "./config.ts";
export * from "./context.ts";
export * from "./format.ts";
export * from "./history.ts";
export * from "./io.ts";
export * from "./main.ts";
export * from "./program.ts";
export * from "./run.ts";
export * from "./sse.ts";
export * from "./tables.ts";
export * from "./words.ts";
