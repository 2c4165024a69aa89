/**
 * Lab helper: carries TCP connections across network namespaces through
 * Unix sockets (a socket file is reachable from every namespace), so an
 * appliance in its own namespace reaches the etcd members the test runs on
 * the host's loopback without a link into the host's network.
 *
 *   deno run -A _unix_relay.ts unix SOCK=HOST:PORT ...   # host side: socket -> member
 *   deno run -A _unix_relay.ts tcp HOST:PORT=SOCK ...    # namespace side: loopback -> socket
 *
 * Each accepted connection is joined to one new connection of the other
 * side; when either end closes or fails, both are closed (a member that is
 * down: the namespace side's connection is accepted, then closed at once).
 * Prints `relay ready` once every listener is open. Runs until killed.
 */
function hostPort(s: string): { hostname: string; port: number } {
  const i = s.lastIndexOf(":");
  return { hostname: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

async function join(a: Deno.Conn, dial: () => Promise<Deno.Conn>): Promise<void> {
  let b: Deno.Conn;
  try {
    b = await dial();
  } catch {
    a.close();
    return;
  }
  await Promise.race([
    a.readable.pipeTo(b.writable, { preventClose: true }),
    b.readable.pipeTo(a.writable, { preventClose: true }),
  ]).catch(() => {});
  for (const c of [a, b]) {
    try {
      c.close();
    } catch { /* closed by the pipe already */ }
  }
}

async function serve(listener: Deno.Listener, dial: () => Promise<Deno.Conn>): Promise<void> {
  for await (const conn of listener) join(conn, dial);
}

const [mode, ...pairs] = Deno.args;
if ((mode !== "unix" && mode !== "tcp") || pairs.length === 0) {
  console.error("usage: _unix_relay.ts unix SOCK=HOST:PORT ... | tcp HOST:PORT=SOCK ...");
  Deno.exit(2);
}
for (const pair of pairs) {
  const [from, to] = pair.split("=");
  if (mode === "unix") {
    await Deno.remove(from).catch(() => {});
    const l = Deno.listen({ transport: "unix", path: from });
    serve(l, () => Deno.connect(hostPort(to)));
  } else {
    const l = Deno.listen(hostPort(from));
    serve(l, () => Deno.connect({ transport: "unix", path: to }));
  }
}
console.log("relay ready");
