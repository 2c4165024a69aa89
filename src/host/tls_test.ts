import assert from "node:assert/strict";
import {
  certInfo,
  coversIp,
  generateSelfSigned,
  loadOrCreateTls,
  normalizeFingerprint,
  tlsPaths,
  validatePair,
} from "./tls.ts";

const IPS = ["192.0.2.1", "198.51.100.1"];

Deno.test("generateSelfSigned: P-256, IP SANs, CA:FALSE, fingerprint as openssl prints it", async () => {
  const pair = await generateSelfSigned(IPS);
  const info = validatePair(pair, Date.now());
  assert.ok(typeof info !== "string", String(info));
  assert.deepEqual(info.subjectAltNames, ["IP Address:192.0.2.1", "IP Address:198.51.100.1"]);
  assert.ok(coversIp(info, "198.51.100.1") && !coversIp(info, "192.0.2.2"));
  assert.equal(info.subject, "CN=knockgate");
  assert.ok(info.selfSigned);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/c.pem`, pair.cert);
    const out = new Deno.Command("openssl", {
      args: ["x509", "-in", `${dir}/c.pem`, "-noout", "-fingerprint", "-sha256", "-text"],
    }).outputSync();
    const text = new TextDecoder().decode(out.stdout);
    assert.match(text, new RegExp(`=${info.fingerprint}\n`));
    assert.match(text, /CA:FALSE/);
    assert.match(text, /prime256v1|P-256/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("validatePair: a foreign key, an expired or unparsable certificate are refused", async () => {
  const a = await generateSelfSigned(["192.0.2.1"]);
  const b = await generateSelfSigned(["192.0.2.1"]);
  assert.equal(
    validatePair({ cert: a.cert, key: b.key }, Date.now()),
    "the key does not belong to the certificate",
  );
  const info = certInfo(a.cert) as Exclude<ReturnType<typeof certInfo>, string>;
  assert.match(String(validatePair(a, info.notAfter + 1)), /expired on/);
  assert.match(String(validatePair(a, info.notBefore - 86_400_000)), /not valid before/);
  assert.match(
    String(validatePair({ cert: "junk", key: a.key }, Date.now())),
    /not a PEM certificate/,
  );
  assert.match(
    String(validatePair({ cert: a.cert, key: "junk" }, Date.now())),
    /not a PEM private key/,
  );
});

Deno.test("normalizeFingerprint: any spelling of 32 bytes", () => {
  const fp = "AB:".repeat(31) + "CD";
  assert.equal(normalizeFingerprint(fp.toLowerCase().replaceAll(":", "")), fp);
  assert.equal(normalizeFingerprint(`sha256:${fp}`), fp);
  assert.equal(normalizeFingerprint("AB:CD"), null);
});

Deno.test("loadOrCreateTls: made once (key 0600), kept, remade when the addresses change", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const storePath = `${dir}/knockgate.kv`;
    const first = await loadOrCreateTls({ storePath, ips: IPS });
    assert.equal(first.source, "generated");
    assert.deepEqual(first.paths, tlsPaths(storePath));
    assert.equal((await Deno.stat(first.paths.key)).mode! & 0o777, 0o600);
    const again = await loadOrCreateTls({ storePath, ips: IPS });
    assert.equal(again.source, "store");
    assert.equal(again.info.fingerprint, first.info.fingerprint);
    const moved = await loadOrCreateTls({ storePath, ips: ["192.0.2.1", "203.0.113.7"] });
    assert.equal(moved.source, "generated");
    assert.ok(coversIp(moved.info, "203.0.113.7"));
    // The configuration's own files win, and a bad pair there stops the start.
    const own = await generateSelfSigned(["192.0.2.9"]);
    await Deno.writeTextFile(`${dir}/own.pem`, own.cert);
    await Deno.writeTextFile(`${dir}/own.key`, own.key);
    const configured = { cert: `${dir}/own.pem`, key: `${dir}/own.key` };
    const fromConfig = await loadOrCreateTls({ configured, storePath, ips: IPS });
    assert.equal(fromConfig.source, "config");
    assert.equal(
      fromConfig.info.fingerprint,
      certInfo(own.cert) && (certInfo(own.cert) as { fingerprint: string }).fingerprint,
    );
    await Deno.writeTextFile(`${dir}/own.key`, first.key);
    await assert.rejects(loadOrCreateTls({ configured, storePath, ips: IPS }), /does not belong/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("IPv6 addresses are IP SANs in RFC 5952 text; adding one makes the certificate again", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const storePath = `${dir}/knockgate.kv`;
    const first = await loadOrCreateTls({ storePath, ips: IPS });
    const ips = [...IPS, "2001:db8:198::1", "2001:db8:0:1::1"];
    const dual = await loadOrCreateTls({ storePath, ips });
    assert.equal(dual.source, "generated", "an address the certificate lacks: made again");
    assert.notEqual(dual.info.fingerprint, first.info.fingerprint);
    assert.deepEqual(dual.info.subjectAltNames.slice(2), [
      "IP Address:2001:db8:198::1",
      "IP Address:2001:db8:0:1::1",
    ]);
    assert.ok(ips.every((ip) => coversIp(dual.info, ip)));
    assert.ok(!coversIp(dual.info, "2001:db8:198::2"));
    // Kept at the next start: the SANs read back as the configuration spells them.
    assert.equal((await loadOrCreateTls({ storePath, ips })).source, "store");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
