/**
 * Knockgate: a port-knocking NAT appliance. `deno task start -- --config FILE`
 * runs it; see README.md.
 */
import { main } from "./src/main.ts";

export { main };

if (import.meta.main) Deno.exit(await main(Deno.args));
