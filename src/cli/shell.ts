/**
 * The Knockgate admin shell (`deno task shell`): manages the appliance over
 * its HTTP management API, never its store.
 *
 *   deno task shell --url https://192.0.2.1:8443           # interactive, knockgate> prompt
 *   deno task shell -- --url https://192.0.2.1:8443 --fingerprint FP login admin  # pins, saves a token
 *   deno task shell -- exec portknock                      # the IPs that passed the knock
 *   deno task shell -- users list --json                   # for scripts
 *
 * Exit codes: 0 ok, 1 API or network error, 2 usage.
 */
import { main } from "./shell/main.ts";

export { main };

if (import.meta.main) Deno.exit(await main(Deno.args));
