/**
 * Building blocks of every page: the document layout (landmarks, navigation,
 * the live region), form fields with their hint and error slots, and small
 * display pieces. Field error slots carry `data-error-for` with the API's
 * field path, so `/static/api.js` puts each API error next to its field.
 */
import type { Child, FC, PropsWithChildren } from "hono/jsx";
import { raw } from "hono/html";
import { canOperate, isAdmin, type Viewer } from "./_types.ts";

/** The sections of the main navigation. */
export type NavKey = "dashboard" | "users" | "rules" | "events" | "settings";

interface NavItem {
  key: NavKey;
  href: string;
  label: string;
  show: (v: Viewer) => boolean;
}

const NAV: readonly NavItem[] = [
  { key: "dashboard", href: "/", label: "Dashboard", show: () => true },
  { key: "users", href: "/users", label: "Users", show: isAdmin },
  { key: "rules", href: "/rules", label: "Rules", show: () => true },
  { key: "events", href: "/events", label: "Events", show: () => true },
  { key: "settings", href: "/settings", label: "Settings", show: canOperate },
];

/** A page module under /static/ (a component, so a list's `key` is not rendered). */
const ModuleScript: FC<{ file: string }> = ({ file }) => (
  <script type="module" src={`/static/${file}`}></script>
);

/** Props of `Layout`. */
export interface LayoutProps {
  /** The page title (also the `<h1>` unless `heading` is false). */
  title: string;
  nav?: NavKey;
  viewer?: Viewer;
  /** Page modules under /static/, e.g. `dashboard.js`. */
  scripts?: string[];
  /** Render the `<h1>` from `title` (default true). */
  heading?: boolean;
  /** A class on `<main>`, e.g. `narrow`. */
  mainClass?: string;
}

const Header: FC<{ viewer?: Viewer; nav?: NavKey }> = ({ viewer, nav }) => (
  <header class="topbar">
    <a class="brand" href="/">
      <span class="brand-mark" aria-hidden="true">K</span> Knockgate
    </a>
    {viewer && (
      <nav class="mainnav" aria-label="Main">
        <ul>
          {NAV.filter((i) => i.show(viewer)).map((i) => (
            <li>
              <a href={i.href} aria-current={i.key === nav ? "page" : undefined}>{i.label}</a>
            </li>
          ))}
        </ul>
      </nav>
    )}
    {viewer && (
      <div class="account">
        <span class="who">
          <span class="visually-hidden">Signed in as</span>
          <strong>{viewer.name}</strong> <span class="role">{viewer.role}</span>
        </span>
        <button type="button" class="btn small secondary" id="sign-out">Sign out</button>
      </div>
    )}
  </header>
);

/** The whole HTML document around a page. */
export const Layout: FC<PropsWithChildren<LayoutProps>> = (p) => (
  <>
    {raw("<!doctype html>")}
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="color-scheme" content="light dark" />
        <meta name="referrer" content="no-referrer" />
        {p.viewer && <meta name="kg-csrf" content={p.viewer.csrfToken} />}
        <title>{p.title} · Knockgate</title>
        <link rel="icon" href="/static/icon.svg" type="image/svg+xml" />
        <link rel="stylesheet" href="/static/app.css" />
        <script type="module" src="/static/common.js"></script>
        {(p.scripts ?? []).map((s) => <ModuleScript key={s} file={s} />)}
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <Header viewer={p.viewer} nav={p.nav} />
        <main id="main" tabindex={-1} class={p.mainClass}>
          {p.heading !== false && <h1>{p.title}</h1>}
          {p.children}
        </main>
        <footer class="footer">
          <span>Knockgate port-knocking NAT appliance</span>
          <a href="/knock/">Web knock tool</a>
          <a href="/api/docs/">API documentation</a>
        </footer>
        <div id="announcer" class="visually-hidden" role="status" aria-live="polite"></div>
      </body>
    </html>
  </>
);

/** Props of a labelled field. */
export interface FieldProps {
  /** The input's id. */
  id: string;
  /** The API field path errors name, e.g. `publicPorts` or `knock.firstPort`. */
  field: string;
  label: string;
  hint?: string;
  class?: string;
}

/** The `aria-describedby` of an input with a hint and an error slot. */
export function describedBy(id: string, hint?: string): string {
  return hint ? `${id}-hint ${id}-error` : `${id}-error`;
}

/** The error slot of a field: empty and hidden until a script fills it. */
export const FieldError: FC<{ id: string; field: string }> = ({ id, field }) => (
  <p class="field-error" id={`${id}-error`} data-error-for={field} hidden></p>
);

/** A label, the control (children), a hint and the error slot. */
export const Field: FC<PropsWithChildren<FieldProps>> = (p) => (
  <div class={`field ${p.class ?? ""}`.trim()} data-field={p.field}>
    <label for={p.id}>{p.label}</label>
    {p.children}
    {p.hint && <p class="hint" id={`${p.id}-hint`}>{p.hint}</p>}
    <FieldError id={p.id} field={p.field} />
  </div>
);

/** Props of `TextField`. */
export interface TextFieldProps extends FieldProps {
  value?: string | number;
  type?: "text" | "password" | "number";
  required?: boolean;
  autocomplete?: string;
  inputmode?: "numeric" | "text";
  placeholder?: string;
  disabled?: boolean;
  pattern?: string;
  maxlength?: number;
  size?: number;
}

/** A labelled text (or number, or password) input. */
export const TextField: FC<TextFieldProps> = (p) => (
  <Field id={p.id} field={p.field} label={p.label} hint={p.hint} class={p.class}>
    <input
      id={p.id}
      name={p.field}
      type={p.type ?? "text"}
      value={p.value === undefined ? undefined : String(p.value)}
      required={p.required}
      autocomplete={p.autocomplete ?? "off"}
      inputmode={p.inputmode}
      placeholder={p.placeholder}
      disabled={p.disabled}
      pattern={p.pattern}
      maxlength={p.maxlength}
      size={p.size}
      aria-describedby={describedBy(p.id, p.hint)}
    />
  </Field>
);

/** One choice of a select. */
export interface Choice {
  value: string;
  label: string;
}

/** A labelled select. */
export const SelectField: FC<
  FieldProps & { choices: Choice[]; value?: string; disabled?: boolean }
> = (p) => (
  <Field id={p.id} field={p.field} label={p.label} hint={p.hint} class={p.class}>
    <select
      id={p.id}
      name={p.field}
      disabled={p.disabled}
      aria-describedby={describedBy(p.id, p.hint)}
    >
      {p.choices.map((c) => (
        <option value={c.value} selected={c.value === p.value}>{c.label}</option>
      ))}
    </select>
  </Field>
);

/** A checkbox with its label after it (a switch-like row). */
export const CheckField: FC<FieldProps & { checked?: boolean; disabled?: boolean }> = (p) => (
  <div class={`field check ${p.class ?? ""}`.trim()} data-field={p.field}>
    <input
      id={p.id}
      name={p.field}
      type="checkbox"
      checked={p.checked}
      disabled={p.disabled}
      aria-describedby={describedBy(p.id, p.hint)}
    />
    <label for={p.id}>{p.label}</label>
    {p.hint && <p class="hint" id={`${p.id}-hint`}>{p.hint}</p>}
    <FieldError id={p.id} field={p.field} />
  </div>
);

/** A group of checkboxes for a list field (users of a rule, rules of a user). */
export const CheckGroup: FC<{
  id: string;
  field: string;
  legend: string;
  hint?: string;
  choices: Choice[];
  checked: readonly string[];
  disabled?: boolean;
  empty?: string;
}> = (p) => (
  <fieldset
    class="field group"
    data-field={p.field}
    id={p.id}
    aria-describedby={describedBy(p.id, p.hint)}
  >
    <legend>{p.legend}</legend>
    {p.hint && <p class="hint" id={`${p.id}-hint`}>{p.hint}</p>}
    {p.choices.length === 0 && <p class="muted">{p.empty ?? "Nothing to choose from."}</p>}
    <ul class="choices">
      {p.choices.map((c, i) => (
        <li>
          <input
            type="checkbox"
            id={`${p.id}-${i}`}
            name={p.field}
            value={c.value}
            checked={p.checked.includes(c.value)}
            disabled={p.disabled}
          />
          <label for={`${p.id}-${i}`}>{c.label}</label>
        </li>
      ))}
    </ul>
    <FieldError id={p.id} field={p.field} />
  </fieldset>
);

/** The alert above a form that summarises what went wrong (filled by scripts). */
export const FormAlert: FC<{ id: string }> = ({ id }) => (
  <div class="alert error" id={id} role="alert" data-form-error hidden></div>
);

/** A notice box; `kind` picks the colour. */
export const Notice: FC<
  PropsWithChildren<{ kind: "ok" | "warn" | "error" | "info"; id?: string; role?: string }>
> = (p) => (
  <div class={`alert ${p.kind}`} id={p.id} role={p.role}>
    {p.children}
  </div>
);

/** A small coloured label. */
export const Pill: FC<PropsWithChildren<{ kind?: "ok" | "warn" | "error" | "muted" }>> = (p) => (
  <span class={`pill ${p.kind ?? "muted"}`}>{p.children}</span>
);

const ColumnHeader: FC<{ text: string; numeric: boolean }> = ({ text, numeric }) => (
  <th scope="col" class={numeric ? "num" : undefined}>{text}</th>
);

/** A table that becomes a list of cards on narrow screens (cells carry their header). */
export const DataTable: FC<
  PropsWithChildren<{
    id: string;
    caption: string;
    headers: string[];
    captionHidden?: boolean;
    /** Headers of right-aligned numeric columns. */
    numeric?: string[];
    /** Show rows as cards on narrow screens (default true; false for two-column tables). */
    stack?: boolean;
  }>
> = (p) => (
  <div class="table-wrap">
    <table id={p.id} class={p.stack === false ? "data" : "data stack"}>
      <caption class={p.captionHidden ? "visually-hidden" : undefined}>{p.caption}</caption>
      <thead>
        <tr>
          {p.headers.map((h) => (
            <ColumnHeader key={h} text={h} numeric={p.numeric?.includes(h) ?? false} />
          ))}
        </tr>
      </thead>
      <tbody>{p.children}</tbody>
    </table>
  </div>
);

/** A table cell labelled with its column for the narrow layout. */
export const Cell: FC<PropsWithChildren<{ label: string; class?: string }>> = (p) => (
  <td data-label={p.label} class={p.class}>{p.children}</td>
);

/** The row shown when a table has no rows. */
export const EmptyRow: FC<{ span: number; text: string }> = ({ span, text }) => (
  <tr class="empty">
    <td colspan={span}>{text}</td>
  </tr>
);

/** A definition list of label/value pairs. */
export const Facts: FC<{ items: [string, Child][]; id?: string }> = ({ items, id }) => (
  <dl class="facts" id={id}>
    {items.map(([k, v]) => (
      <div>
        <dt>{k}</dt>
        <dd>{v}</dd>
      </div>
    ))}
  </dl>
);
