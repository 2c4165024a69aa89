import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { ApiClient, NetworkError } from "./api_client.ts";
import {
  httpClientFor,
  parseFingerprint,
  peerCertificate,
  pinnedCertificate,
  readCaFile,
} from "./trust.ts";
import { UsageError } from "./io.ts";

/** A self-signed P-256 pair for 127.0.0.1, as the appliance makes it (src/host/tls.ts). */
async function selfSigned(): Promise<{ cert: string; key: string }> {
  const dir = await Deno.makeTempDir();
  try {
    const out = await new Deno.Command("openssl", {
      args: [
        ..."req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1".split(" "),
        ...["-keyout", `${dir}/k.pem`, "-out", `${dir}/c.pem`, "-subj", "/CN=knockgate"],
        ...[
          "-addext",
          "subjectAltName=IP:127.0.0.1",
          "-addext",
          "basicConstraints=critical,CA:FALSE",
        ],
      ],
      stderr: "null",
    }).output();
    assert.equal(out.code, 0);
    return {
      cert: await Deno.readTextFile(`${dir}/c.pem`),
      key: await Deno.readTextFile(`${dir}/k.pem`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("parseFingerprint: hex with or without colons; else a usage error", () => {
  const fp = "0A:".repeat(31) + "FF";
  assert.equal(parseFingerprint(fp.toLowerCase()), fp);
  assert.equal(parseFingerprint(fp.replaceAll(":", "")), fp);
  assert.throws(() => parseFingerprint("0A:FF"), UsageError);
});

Deno.test({
  name: "pinned certificate: the right pin trusts it for fetch, a wrong pin is refused",
  sanitizeResources: false,
  fn: async () => {
    const pair = await selfSigned();
    const info = { fingerprint: new X509Certificate(pair.cert).fingerprint256 };
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, cert: pair.cert, key: pair.key, onListen: () => {} },
      () => Response.json({ fine: true }),
    );
    const url = `https://127.0.0.1:${server.addr.port}`;
    try {
      assert.equal((await peerCertificate(url)).fingerprint, info.fingerprint);
      const pem = await pinnedCertificate(url, info.fingerprint.replaceAll(":", "").toLowerCase());
      const api = new ApiClient(url, null, 5000, undefined, httpClientFor(pem));
      assert.deepEqual(await api.get("/ok"), { fine: true });
      // Without the pin the system roots refuse the self-signed certificate.
      await assert.rejects(new ApiClient(url, null, 5000).get("/ok"), NetworkError);
      const wrong = "00:".repeat(31) + "00";
      await assert.rejects(pinnedCertificate(url, wrong), /Refusing .*not the pinned 00:00/);
      // Another key's certificate for the same address does not verify as that anchor.
      const other = await selfSigned();
      const impostor = new ApiClient(url, null, 5000, undefined, httpClientFor(other.cert));
      await assert.rejects(impostor.get("/ok"), NetworkError);
    } finally {
      await server.shutdown();
    }
  },
});

Deno.test({
  name: "a CA file: its certificate is trusted; a file without one is a usage error",
  sanitizeResources: false,
  fn: async () => {
    const pair = await selfSigned();
    const dir = await Deno.makeTempDir();
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, cert: pair.cert, key: pair.key, onListen: () => {} },
      () => Response.json({ fine: true }),
    );
    try {
      await Deno.writeTextFile(`${dir}/ca.pem`, pair.cert);
      await Deno.writeTextFile(`${dir}/junk.pem`, "not a certificate");
      const ca = await readCaFile(`${dir}/ca.pem`);
      const api = new ApiClient(
        `https://127.0.0.1:${server.addr.port}`,
        null,
        5000,
        undefined,
        httpClientFor(ca),
      );
      assert.deepEqual(await api.get("/ok"), { fine: true });
      await assert.rejects(readCaFile(`${dir}/junk.pem`), UsageError);
      await assert.rejects(readCaFile(`${dir}/missing.pem`), UsageError);
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
