/**
 * Child process of the kill -9 durability test: creates users `w0`, `w1`, ...
 * in a loop and prints each name once its write is acknowledged.
 * Usage: deno run -A --unstable-kv kill_writer.ts <kv path>
 */
import { openStore } from "../kv_store.ts";

const store = await openStore(Deno.args[0]);
const out = new TextEncoder();
for (let i = 0; i < 10_000; i++) {
  const name = `w${i}`;
  await store.users.createUser(
    { name, password: "password1", role: "viewer", knock: { enabled: true, firstPort: 1000 + i } },
    "durability-test",
  );
  Deno.stdout.writeSync(out.encode(`${name}\n`)); // synchronous: an acknowledged name is never buffered
}
store.close();
