/** The management API from the LAN server's namespace, for lab tests (curl, bearer token). */
import assert from "node:assert/strict";
import type { Names, RunningLab } from "../../scripts/lab/appliance.ts";
import { LAB, type LabNames } from "../../scripts/lab/topology.ts";
import { totpCode } from "../../src/knock/totp.ts";
import { labCert, sh } from "./_helpers.ts";

const API = `https://${LAB.lan}:8443/api/v1`;

/** An API answer: HTTP status and the parsed JSON body. */
export interface Reply<B = Record<string, unknown>> {
  status: number;
  body: B;
}

/** One API call made with curl from the LAN server's namespace. */
export async function api<
  B = Record<string, unknown>,
  N extends Names<N> & { server: string } = LabNames,
>(
  lab: RunningLab<N>,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; jar?: string; csrf?: string } = {},
): Promise<Reply<B>> {
  const argv = [
    "curl",
    "--cacert",
    labCert(lab),
    "-sS",
    "-m",
    "10",
    "-X",
    method,
    "-w",
    "\n%{http_code}",
  ];
  if (opts.token) argv.push("-H", `Authorization: Bearer ${opts.token}`);
  if (opts.jar) argv.push("-b", opts.jar, "-c", opts.jar);
  if (opts.csrf) argv.push("-H", `X-CSRF-Token: ${opts.csrf}`);
  if (opts.body !== undefined) {
    argv.push("-H", "Content-Type: application/json", "--data", JSON.stringify(opts.body));
  }
  const r = await sh(lab, "server", [...argv, `${API}${path}`], 15);
  const nl = r.stdout.lastIndexOf("\n");
  const text = r.stdout.slice(0, nl);
  return { status: Number(r.stdout.slice(nl + 1)), body: text ? JSON.parse(text) : {} };
}

/** The bootstrap administrator's credentials, read from the appliance log. */
export async function adminCredentials<N extends Names<N>>(lab: RunningLab<N>) {
  const log = await Deno.readTextFile(lab.logFile);
  const m = log.match(/user=(\S+) password=(\S+) totp-secret=([A-Z2-7]+)/);
  assert.ok(m, `no initial administrator in the log:\n${log}`);
  return { username: m[1], password: m[2], secret: m[3] };
}

/** Signs in as the bootstrap administrator (credentials from the log); a bearer token. */
export async function signIn<N extends Names<N> & { server: string }>(
  lab: RunningLab<N>,
): Promise<string> {
  const admin = await adminCredentials(lab);
  const code = totpCode(admin.secret, Math.floor(Date.now() / 1000));
  const jar = `${lab.stateDir}/cookies.txt`;
  const login = await api(lab, "POST", "/auth/login", {
    jar,
    body: { username: admin.username, password: admin.password, code },
  });
  assert.equal(login.status, 200, JSON.stringify(login.body));
  const csrf = String(login.body.csrfToken);
  const tok = await api(lab, "POST", "/auth/tokens", { jar, csrf, body: {} });
  if (tok.status === 201 || tok.status === 200) return String(tok.body.token);
  throw new Error(`cannot create a token: ${tok.status} ${JSON.stringify(tok.body)}`);
}
