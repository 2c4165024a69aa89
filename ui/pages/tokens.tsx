/**
 * API tokens of the signed-in user: for scripts and Prometheus (`/metrics`),
 * sent as `Authorization: Bearer <token>`. A new token is shown once; the
 * list shows each token's id (the SHA-256 of the token), never the token.
 * The whole section is one fragment: create and revoke answer with it.
 */
import type { FC } from "hono/jsx";
import {
  Cell,
  DataTable,
  EmptyRow,
  FormAlert,
  FormContext,
  Notice,
  TextField,
} from "../components.tsx";
import { formatTime } from "../_format.js";
import { type FormState, FRESH_FORM } from "../_problems.ts";

/** A token as the API lists it. */
export interface TokenInfo {
  id: string;
  createdAt: number;
  expiresAt: number;
}

/** Props of the tokens section. */
export interface TokensProps {
  tokens: TokenInfo[];
  /** A token just created: its secret is shown this once. */
  created?: TokenInfo & { token: string };
  /** The create form's state after a refused post. */
  form?: FormState;
  /** A failure to show above the list (a refused revoke). */
  alert?: string;
  /** Focus the list heading (after a revoke took the focused row away). */
  focusList?: boolean;
}

/** The create form (a component, so it is built inside the form state's provider). */
const TokenForm: FC = () => (
  <form
    id="token-form"
    class="card form inline-form"
    novalidate
    method="post"
    action="/tokens"
    data-kg-form
    data-kg-target="#tokens-region"
  >
    <FormAlert id="token-alert" />
    <TextField
      id="token-days"
      field="ttlDays"
      label="Lifetime (days)"
      hint="1 to 365; the token stops working after this."
      inputmode="numeric"
      value={30}
      maxlength={3}
    />
    <div class="actions">
      <button type="submit" class="btn primary">Create token</button>
    </div>
  </form>
);

/** The short form of a token id shown in the list. */
export function shortId(id: string): string {
  return id.slice(0, 12);
}

/** The new token, the create form and the list. */
export const TokensSection: FC<TokensProps> = (p) => {
  const sorted = [...p.tokens].sort((a, b) => b.createdAt - a.createdAt);
  const headers = ["Token id", "Created", "Expires", "Actions"];
  return (
    <div id="tokens-region">
      {p.created && (
        <Notice kind="ok" id="token-created" role="status">
          <p tabindex={-1} data-kg-focus>
            <strong>Token created.</strong> Copy it now: it is shown only this once. Send it as{" "}
            <code>Authorization: Bearer &lt;token&gt;</code>.
          </p>
          <div class="field">
            <label for="token-secret">New token</label>
            <div class="copy-row">
              <input id="token-secret" class="mono" readonly value={p.created.token} />
              <button type="button" class="btn small secondary" data-copy="token-secret">
                Copy <span class="visually-hidden">token</span>
              </button>
            </div>
          </div>
        </Notice>
      )}
      <FormContext.Provider value={p.form ?? FRESH_FORM}>
        <TokenForm />
      </FormContext.Provider>
      <section class="card" aria-labelledby="tokens-h">
        <h2
          id="tokens-h"
          tabindex={p.focusList ? -1 : undefined}
          data-kg-focus={p.focusList ? "" : undefined}
        >
          Your tokens
        </h2>
        <div class="alert error" id="tokens-alert" role="alert" data-form-error hidden={!p.alert}>
          {p.alert}
        </div>
        <DataTable id="tokens" caption="Your API tokens" captionHidden headers={headers}>
          {sorted.length === 0
            ? <EmptyRow span={headers.length} text="No tokens." />
            : sorted.map((t) => (
              <tr data-token={t.id}>
                <th scope="row" data-label="Token id" class="mono">{shortId(t.id)}…</th>
                <Cell label="Created">{formatTime(t.createdAt)}</Cell>
                <Cell label="Expires">{formatTime(t.expiresAt)}</Cell>
                <Cell label="Actions">
                  <button
                    type="button"
                    class="btn small danger"
                    data-kg-post={`/tokens/${t.id}/revoke`}
                    data-kg-confirm={`Revoke token ${
                      shortId(t.id)
                    }…? Scripts using it stop working.`}
                    data-kg-target="#tokens-region"
                  >
                    Revoke <span class="visually-hidden">token {shortId(t.id)}</span>
                  </button>
                </Cell>
              </tr>
            ))}
        </DataTable>
      </section>
    </div>
  );
};
