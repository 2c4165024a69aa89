/**
 * HTTPS on the real appliance in the lab: the self-signed certificate made at
 * the first start verifies with curl `--cacert` from the LAN and, after a
 * knock, with `--pinnedpubkey` from the WAN; plain HTTP on the management
 * port gets no HTTP answer; an administrator's own pair (PUT /tls) is served
 * after a restart. Needs root and /dev/net/tun.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB } from "../../scripts/lab/topology.ts";
import { generateSelfSigned } from "../../src/host/tls.ts";
import { signIn } from "./_api.ts";
import { knock, labCert, labSupported, sh, waitForLog } from "./_helpers.ts";

const HEALTH = "/api/v1/health";

/** curl `url` in `ns` with `args`; exit code, body, and the response headers. */
async function get(lab: RunningLab, ns: "server" | "client", url: string, args: string[] = []) {
  const r = await sh(lab, ns, ["curl", "-sS", "-m", "5", "-D", "-", ...args, url], 15);
  return { code: r.code, out: r.stdout, err: r.stderr };
}

/** curl's `--pinnedpubkey` form of a certificate's key: `sha256//` base64 of the SPKI's SHA-256. */
async function spkiPin(pem: string): Promise<string> {
  const spki = new X509Certificate(pem).publicKey.export({ type: "spki", format: "der" });
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(spki)));
  return `sha256//${btoa(String.fromCharCode(...digest))}`;
}

Deno.test({
  name:
    "lab: management over HTTPS only (LAN --cacert, WAN after a knock --pinnedpubkey), own cert",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const lab = await startLab();
  try {
    const pem = await Deno.readTextFile(labCert(lab));
    const fingerprint = new X509Certificate(pem).fingerprint256;
    await t.step("the fingerprint is printed at start and served by GET /tls", async () => {
      const line = await waitForLog(lab, /SHA-256 fingerprint/, 10_000);
      assert.ok(line?.includes(fingerprint), line ?? "no fingerprint line");
      const r = await get(lab, "server", `https://${LAB.lan}:8443/api/v1/tls`, [
        "--cacert",
        labCert(lab),
      ]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, new RegExp(`"fingerprint":"${fingerprint}"`));
      assert.match(r.out, /IP Address:192\.0\.2\.1/);
      assert.match(r.out, /IP Address:198\.51\.100\.1/);
    });
    await t.step("from the LAN: verified by --cacert, HSTS; refused unverified", async () => {
      const url = `https://${LAB.lan}:8443${HEALTH}`;
      const ok = await get(lab, "server", url, ["--cacert", labCert(lab)]);
      assert.equal(ok.code, 0, ok.err);
      assert.match(ok.out, /^HTTP\/[\d.]+ 200/);
      assert.match(ok.out, /strict-transport-security: max-age=31536000/i);
      const untrusted = await get(lab, "server", url);
      assert.equal(untrusted.code, 60, `curl trusted an unknown certificate: ${untrusted.out}`);
    });
    await t.step("plain HTTP on the management port gets no HTTP answer", async () => {
      const plain = await get(lab, "server", `http://${LAB.lan}:8443${HEALTH}`);
      assert.notEqual(plain.code, 0, plain.out);
      assert.doesNotMatch(plain.out, /^HTTP\//);
    });
    await t.step("from the WAN: closed before a knock, pinned HTTPS after it", async () => {
      const url = `https://${LAB.wan}:8443${HEALTH}`;
      const pin = ["--cacert", labCert(lab), "--pinnedpubkey", await spkiPin(pem)];
      const before = await get(lab, "client", url, [...pin, "-m", "2"]);
      assert.notEqual(before.code, 0, "the WAN reached management without a knock");
      const k = await knock(lab, "client");
      assert.equal(k.code, 0, k.stdout + k.stderr);
      let after = await get(lab, "client", url, pin);
      for (let i = 0; i < 10 && after.code !== 0; i++) after = await get(lab, "client", url, pin);
      assert.equal(after.code, 0, after.err);
      assert.match(after.out, /^HTTP\/[\d.]+ 200/);
      const other = await generateSelfSigned([LAB.wan]);
      const wrongPin = ["--cacert", labCert(lab), "--pinnedpubkey", await spkiPin(other.cert)];
      const refused = await get(lab, "client", url, wrongPin);
      assert.equal(refused.code, 90, "curl accepted a wrong pinned key");
    });
    await t.step("an administrator's own pair (PUT /tls) is served after a restart", async () => {
      const own = await generateSelfSigned([LAB.lan, LAB.wan]);
      const token = await signIn(lab);
      const body = `${lab.stateDir}/put.json`;
      await Deno.writeTextFile(body, JSON.stringify(own));
      const put = await sh(lab, "server", [
        "curl",
        "-sS",
        "-m",
        "10",
        "--cacert",
        labCert(lab),
        "-X",
        "PUT",
        "-H",
        `Authorization: Bearer ${token}`,
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        `@${body}`,
        `https://${LAB.lan}:8443/api/v1/tls`,
      ], 15);
      const ownFp = new X509Certificate(own.cert).fingerprint256;
      assert.match(put.stdout, new RegExp(`"pending":\\{"fingerprint":"${ownFp}"`), put.stderr);
      await lab.restartAppliance();
      const ownCa = `${lab.stateDir}/own.pem`;
      await Deno.writeTextFile(ownCa, own.cert);
      const served = await get(lab, "server", `https://${LAB.lan}:8443/api/v1/tls`, [
        "--cacert",
        ownCa,
      ]);
      assert.equal(served.code, 0, served.err);
      assert.match(served.out, new RegExp(`"active":\\{"fingerprint":"${ownFp}"`));
    });
  } finally {
    await lab.down();
  }
});
