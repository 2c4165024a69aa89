/**
 * The HTTPS certificate on the settings page: the fingerprint to pin (the
 * shell's `--fingerprint`), names and expiry, and for administrators a form
 * that installs an own PEM certificate and key (`PUT /api/v1/tls`, served
 * from the next start). The key is never echoed back into the page.
 */
import type { FC } from "hono/jsx";
import type { z } from "zod";
import type { TlsSchema } from "../../src/api/schemas.ts";
import { describedBy, Facts, Field, FieldError, FormAlert } from "../components.tsx";

/** The listener's certificate as `GET /api/v1/tls` shows it. */
export type TlsView = z.infer<typeof TlsSchema>;

const SOURCE: Record<TlsView["source"], string> = {
  config: "The configuration file's tls section (replace those files)",
  store: "Beside the store",
  generated: "Self-signed, made at this start",
};

const PemField: FC<{ id: string; field: "cert" | "key"; label: string; hint: string }> = (p) => (
  <Field id={p.id} field={p.field} label={p.label} hint={p.hint}>
    <textarea
      id={p.id}
      name={p.field}
      rows={6}
      spellcheck={false}
      autocomplete="off"
      aria-describedby={describedBy(p.id, p.hint)}
    >
    </textarea>
  </Field>
);

/** The certificate facts and, for administrators, the install form (a fragment). */
export const TlsForm: FC<{ t: TlsView; canEdit: boolean; saved?: string }> = (
  { t, canEdit, saved },
) => {
  const a = t.active;
  const facts: [string, string][] = [
    ["SHA-256 fingerprint", a.fingerprint],
    ["Names", a.subjectAltNames.join(", ")],
    ["Issuer", a.selfSigned ? `${a.issuer} (self-signed)` : a.issuer],
    ["Valid until", new Date(a.notAfter).toISOString().slice(0, 10)],
    ["Source", SOURCE[t.source]],
  ];
  if (t.pending) facts.push(["Installed, served from the next start", t.pending.fingerprint]);
  return (
    <form
      id="tls-form"
      class="form card"
      novalidate
      method="post"
      action="/settings/tls"
      data-kg-form
      aria-labelledby="tls-h"
    >
      <h2 id="tls-h">HTTPS certificate</h2>
      <p class="hint">
        Pin this fingerprint in the shell: deno task shell -- login --url https://ADDRESS:8443
        --fingerprint FINGERPRINT
      </p>
      <Facts id="tls-facts" items={facts} />
      <FormAlert id="tls-alert" />
      <div class="alert ok" id="tls-ok" role="status" hidden={!saved}>{saved}</div>
      {canEdit && t.source !== "config" && (
        <>
          <PemField
            id="tls-cert"
            field="cert"
            label="Certificate (PEM)"
            hint="The server certificate first, then any intermediates. It must be valid now."
          />
          <PemField
            id="tls-key"
            field="key"
            label="Private key (PEM)"
            hint="The certificate's key; stored beside the store, readable by the appliance only."
          />
          <FieldError id="tls" field="tls" label="Certificate" />
          <div class="actions">
            <button type="submit" class="btn primary">Install certificate</button>
          </div>
        </>
      )}
    </form>
  );
};
