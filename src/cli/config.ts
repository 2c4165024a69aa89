/**
 * `deno task config`: backup and restore of the store's users, rules and
 * settings (see `store/backup.ts`).
 *
 * ```sh
 * deno task config export -- --config config/appliance.jsonc --out backup.json
 * deno task config import backup.json -- --store data/knockgate.kv [--key old.kv.key] [--replace]
 * ```
 */
import { parseArgs } from "node:util";
import { exportStore, importStore } from "../api/backup.ts";
import { taskArgs } from "./task_args.ts";

const USAGE = `Usage: deno task config export [-- --config FILE] [--store PATH] [--out FILE]
       deno task config import FILE [-- --config FILE] [--store PATH] [--key FILE] [--replace]
  export        writes users, rules and settings as JSON (stdout without --out); password
                hashes and TOTP secrets stay encrypted, with the id of the store's key
  import FILE   restores a backup into an empty store (stop the appliance first)
  --config FILE the appliance configuration: the store path and the addressing checked
  --store PATH  the Deno KV file (overrides the configuration's store.path)
  --key FILE    the key file of the store the backup was made from, when this store's differs
  --replace     delete the store's users and rules first
API tokens and sessions are not exported: sign in and make new ones after a restore.`;

/** Runs the tool; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: taskArgs(args).filter((a) => a !== "--"),
      allowPositionals: true,
      options: {
        config: { type: "string" },
        store: { type: "string" },
        out: { type: "string" },
        key: { type: "string" },
        replace: { type: "boolean" },
        help: { type: "boolean" },
      },
    });
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values: flags, positionals: [command, file, ...extra] } = parsed;
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const at = { config: flags.config, store: flags.store };
  try {
    if (command === "export" && file === undefined) {
      const text = `${JSON.stringify(await exportStore(at), null, 2)}\n`;
      if (flags.out === undefined) await Deno.stdout.write(new TextEncoder().encode(text));
      else await Deno.writeTextFile(flags.out, text, { mode: 0o600 });
      if (flags.out !== undefined) console.error(`config: exported to ${flags.out}`);
      return 0;
    }
    if (command === "import" && file !== undefined && extra.length === 0) {
      const doc = JSON.parse(await Deno.readTextFile(file));
      const r = await importStore(at, doc, { key: flags.key, replace: flags.replace });
      console.log(
        `config: imported ${r.users} user(s), ${r.rules} rule(s) and the settings from ${file}` +
          (r.resealed ? " (secrets re-sealed with this store's key)" : ""),
      );
      return 0;
    }
  } catch (e) {
    console.error(`config ${command}: ${(e as Error).message}`);
    return 1;
  }
  console.error(USAGE);
  return 2;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
