/**
 * Test helper: a real etcd cluster (Debian's `etcd-server`) on loopback,
 * members on free ports, data in a temp dir; every member killed and the
 * dir removed by `stop`, which `withEtcdCluster` calls even on failure.
 * Every wait is bounded.
 */

/** True when the `etcd` binary is installed. */
export function etcdInstalled(): boolean {
  try {
    return new Deno.Command("etcd", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

interface Member {
  name: string;
  client: string;
  peer: string;
  dataDir: string;
  log: string;
  child: Deno.ChildProcess | null;
}

/** Bounded sleep. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** PEM files of a test CA, a server certificate for 127.0.0.1 and a client certificate. */
export interface TestPki {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
}

/** Makes a CA and two ECDSA P-256 certificates it signed, in `dir` (the system's openssl). */
export async function makeTestPki(dir: string): Promise<TestPki> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  const ca = ["-keyout", "ca-key.pem", "-out", "ca.pem", "-subj", "/CN=kgt etcd test CA"];
  await openssl(dir, ["req", "-x509", ...ec, ...ca, "-days", "2"]);
  // The client's subject has no CN: with authentication on, etcd 3.4's gateway answers a
  // request whose certificate carries a CN with 400 ("CommonName ... will be ignored").
  // The server's may also authenticate clients: the gateway dials its own member with it.
  const certs = {
    server: [
      "/CN=kgt etcd server",
      "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
    ],
    client: ["/O=knockgate", "extendedKeyUsage=clientAuth\n"],
  };
  for (const [name, [subject, ext]] of Object.entries(certs)) {
    await Deno.writeTextFile(`${dir}/${name}.ext`, ext);
    const csr = ["-keyout", `${name}-key.pem`, "-out", `${name}.csr`, "-subj", subject];
    await openssl(dir, ["req", ...ec, ...csr]);
    const sign = ["-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "2"];
    const out = ["-in", `${name}.csr`, "-out", `${name}.pem`, "-extfile", `${name}.ext`];
    await openssl(dir, ["x509", "-req", ...sign, ...out]);
  }
  return {
    ca: `${dir}/ca.pem`,
    serverCert: `${dir}/server.pem`,
    serverKey: `${dir}/server-key.pem`,
    clientCert: `${dir}/client.pem`,
    clientKey: `${dir}/client-key.pem`,
  };
}

/** A running cluster of `etcd` processes. */
/** Starts of a cluster tried before giving up (see `EtcdCluster.start`). */
const START_ATTEMPTS = 3;

/** A member could not bind the port it was given. */
class PortTakenError extends Error {}

export class EtcdCluster {
  #pki: TestPki | null = null;

  private constructor(readonly dir: string, readonly members: Member[]) {}

  /**
   * Starts `size` members and waits (at most 30 s) until every one is
   * healthy. With `tls` the client URLs are https and take only client
   * certificates of the cluster's own test CA (`pki`).
   */
  static async start(size = 3, tls = false): Promise<EtcdCluster> {
    // A free port is found by binding port 0 and closing it: another test may take it before
    // etcd binds it. Such a start is tried again on fresh ports, a bounded number of times.
    for (let attempt = 1;; attempt++) {
      try {
        return await EtcdCluster.#startOnce(size, tls);
      } catch (err) {
        if (!(err instanceof PortTakenError) || attempt === START_ATTEMPTS) throw err;
      }
    }
  }

  static async #startOnce(size: number, tls: boolean): Promise<EtcdCluster> {
    const dir = await Deno.makeTempDir({ prefix: "kgt-etcd-" });
    const members: Member[] = [];
    for (let i = 0; i < size; i++) {
      members.push({
        name: `m${i}`,
        client: `${tls ? "https" : "http"}://127.0.0.1:${freePort()}`,
        peer: `http://127.0.0.1:${freePort()}`,
        dataDir: `${dir}/m${i}`,
        log: `${dir}/m${i}.log`,
        child: null,
      });
    }
    const cluster = new EtcdCluster(dir, members);
    try {
      if (tls) cluster.#pki = await makeTestPki(dir);
      for (let i = 0; i < size; i++) cluster.#spawn(i, "new");
      await cluster.waitHealthy();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** The test CA and certificates of a cluster started with TLS. */
  get pki(): TestPki {
    if (this.#pki === null) throw new Error("etcd test cluster: started without TLS");
    return this.#pki;
  }

  /** An HTTP client that trusts the test CA and shows the client certificate (TLS only). */
  async httpClient(): Promise<Deno.HttpClient | undefined> {
    const pki = this.#pki;
    if (pki === null) return undefined;
    return Deno.createHttpClient({
      caCerts: [await Deno.readTextFile(pki.ca)],
      cert: await Deno.readTextFile(pki.clientCert),
      key: await Deno.readTextFile(pki.clientKey),
    });
  }

  /** The members' client URLs. */
  get endpoints(): string[] {
    return this.members.map((m) => m.client);
  }

  #spawn(i: number, state: "new" | "existing"): void {
    const m = this.members[i];
    const initial = this.members.map((x) => `${x.name}=${x.peer}`).join(",");
    const flags: Record<string, string> = {
      "name": m.name,
      "data-dir": m.dataDir,
      "listen-client-urls": m.client,
      "advertise-client-urls": m.client,
      "listen-peer-urls": m.peer,
      "initial-advertise-peer-urls": m.peer,
      "initial-cluster": initial,
      "initial-cluster-state": state,
      "initial-cluster-token": `kgt-${this.dir.slice(-8)}`,
      "logger": "zap",
      "log-level": "warn",
    };
    const pki = this.#pki;
    if (pki !== null) {
      Object.assign(flags, {
        "cert-file": pki.serverCert,
        "key-file": pki.serverKey,
        "client-cert-auth": "true",
        "trusted-ca-file": pki.ca,
      });
    }
    const args = Object.entries(flags).map(([k, v]) => `--${k}=${v}`);
    const quoted = args.map((a) => `'${a}'`).join(" ");
    m.child = new Deno.Command("sh", {
      args: ["-c", `exec etcd ${quoted} >>'${m.log}' 2>&1`],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  }

  /** Waits (bounded) until every running member reports a leader and answers. */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const client = await this.httpClient();
    try {
      await this.#waitHealthy(Date.now() + timeoutMs, timeoutMs, client);
    } finally {
      client?.close();
    }
  }

  async #waitHealthy(deadline: number, timeoutMs: number, client?: Deno.HttpClient) {
    for (const m of this.members) {
      if (m.child === null) continue;
      for (;;) {
        try {
          const res = await fetch(`${m.client}/health`, {
            signal: AbortSignal.timeout(1000),
            ...(client === undefined ? {} : { client }),
          });
          const body = await res.json() as { health?: string };
          if (body.health === "true") break;
        } catch { /* not up yet */ }
        const log = await Deno.readTextFile(m.log).catch(() => "");
        if (log.includes("address already in use")) {
          throw new PortTakenError(`etcd member ${m.name}: its port was taken:\n${log}`);
        }
        if (Date.now() > deadline) {
          throw new Error(`etcd member ${m.name} not healthy after ${timeoutMs} ms:\n${log}`);
        }
        await sleep(100);
      }
    }
  }

  /** The index of the member that is the raft leader now (asked through the gateway). */
  async leader(): Promise<number> {
    for (const m of this.members) {
      if (m.child === null) continue;
      try {
        const res = await fetch(`${m.client}/v3/maintenance/status`, {
          method: "POST",
          body: "{}",
          signal: AbortSignal.timeout(1000),
        });
        const st = await res.json() as { header?: { member_id?: string }; leader?: string };
        if (st.leader !== undefined && st.leader !== "0") {
          const ids = await Promise.all(this.members.map(async (x) => {
            if (x.child === null) return "";
            const r = await fetch(`${x.client}/v3/maintenance/status`, {
              method: "POST",
              body: "{}",
            });
            return ((await r.json()) as { header?: { member_id?: string } }).header?.member_id ??
              "";
          }));
          const i = ids.indexOf(st.leader);
          if (i >= 0) return i;
        }
      } catch { /* ask the next one */ }
    }
    throw new Error("etcd: no member knows a leader");
  }

  /** SIGKILLs member `i` and waits for it to be gone. */
  async kill(i: number): Promise<void> {
    const child = this.members[i].child;
    if (child === null) return;
    this.members[i].child = null;
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await child.status;
  }

  /** SIGSTOPs member `i` (a silent partition: connections hang, nothing is refused). */
  freeze(i: number): void {
    this.members[i].child?.kill("SIGSTOP");
  }

  /** SIGCONTs member `i`. */
  thaw(i: number): void {
    this.members[i].child?.kill("SIGCONT");
  }

  /** Starts member `i` again on its data dir. */
  restart(i: number): void {
    if (this.members[i].child !== null) return;
    this.#spawn(i, "existing");
  }

  /** Kills every member and removes the data dir. */
  async stop(): Promise<void> {
    for (let i = 0; i < this.members.length; i++) await this.kill(i);
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** Runs `fn` with a started cluster; stops it afterwards, even on failure. */
export async function withEtcdCluster(
  fn: (cluster: EtcdCluster) => Promise<void>,
  size = 3,
  tls = false,
): Promise<void> {
  const cluster = await EtcdCluster.start(size, tls);
  try {
    await fn(cluster);
  } finally {
    await cluster.stop();
  }
}
