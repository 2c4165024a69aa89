/**
 * Building blocks of every page: the document layout (landmarks, navigation,
 * the live region), form fields with their hint and error slots, and small
 * display pieces (the store banner of degraded mode among them). Fields read the form's state (posted values, problems by
 * field path) from `FormContext`, so a refused form is rendered again with
 * what was typed and every problem beside its field. Error slots carry
 * `data-error-for` (the API's field path) and `data-label`.
 */
import { type Child, createContext, type FC, type PropsWithChildren, useContext } from "hono/jsx";
import { raw } from "hono/html";
import { canOperate, isAdmin, type StoreHealth, type Viewer } from "./_types.ts";
import { formatAgo } from "./_format.js";
import { type FormState, FRESH_FORM } from "./_problems.ts";

/** The state of the form being rendered (values and problems after a refused post). */
export const FormContext = createContext<FormState>(FRESH_FORM);

/** The posted value of `field`, or undefined before a post. */
function posted(state: FormState, field: string): string | undefined {
  return state.values?.get(field)?.[0];
}

/** `aria-invalid` of a control of `field`. */
function invalid(state: FormState, field: string): "true" | undefined {
  return state.errors.has(field) ? "true" : undefined;
}

function fieldClass(base: string, state: FormState, field: string, extra?: string): string {
  return [base, extra ?? "", state.errors.has(field) ? "invalid" : ""].filter((s) => s !== "")
    .join(" ");
}

/** The sections of the main navigation. */
export type NavKey = "dashboard" | "users" | "rules" | "events" | "settings" | "tokens";

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
  { key: "tokens", href: "/tokens", label: "API tokens", show: () => true },
];

/** Props of `Layout`. */
export interface LayoutProps {
  /** The page title (also the `<h1>` unless `heading` is false). */
  title: string;
  nav?: NavKey;
  viewer?: Viewer;
  /** Render the `<h1>` from `title` (default true). */
  heading?: boolean;
  /** A class on `<main>`, e.g. `narrow`. */
  mainClass?: string;
  /** The store's state: a banner above the page while it is unreachable. */
  store?: StoreHealth;
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
        <button type="button" class="btn small secondary" id="sign-out" data-kg-post="/logout">
          Sign out
        </button>
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
        <script type="module" src="/static/kg.js"></script>
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <Header viewer={p.viewer} nav={p.nav} />
        <main id="main" tabindex={-1} class={p.mainClass}>
          {p.store && <StoreBanner store={p.store} now={Date.now()} />}
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

/** The error slot of a field: the form state's messages for `field`, hidden when none. */
export const FieldError: FC<{ id: string; field: string; label: string }> = (p) => {
  const messages = useContext(FormContext).errors.get(p.field) ?? [];
  return (
    <p
      class="field-error"
      id={`${p.id}-error`}
      data-error-for={p.field}
      data-label={p.label}
      hidden={messages.length === 0}
    >
      {messages.join(" ")}
    </p>
  );
};

/** A label, the control (children), a hint and the error slot. */
export const Field: FC<PropsWithChildren<FieldProps>> = (p) => {
  const state = useContext(FormContext);
  return (
    <div class={fieldClass("field", state, p.field, p.class)} data-field={p.field}>
      <label for={p.id}>{p.label}</label>
      {p.children}
      {p.hint && <p class="hint" id={`${p.id}-hint`}>{p.hint}</p>}
      <FieldError id={p.id} field={p.field} label={p.label} />
    </div>
  );
};

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
  /** Focus this field when the page opens. */
  autofocus?: boolean;
}

/** A labelled text (or number, or password) input; a password is never echoed. */
export const TextField: FC<TextFieldProps> = (p) => {
  const state = useContext(FormContext);
  const value = p.type === "password"
    ? undefined
    : posted(state, p.field) ?? (p.value === undefined ? undefined : String(p.value));
  return (
    <Field id={p.id} field={p.field} label={p.label} hint={p.hint} class={p.class}>
      <input
        id={p.id}
        name={p.field}
        type={p.type ?? "text"}
        value={value}
        required={p.required}
        autocomplete={p.autocomplete ?? "off"}
        inputmode={p.inputmode}
        placeholder={p.placeholder}
        disabled={p.disabled}
        pattern={p.pattern}
        maxlength={p.maxlength}
        size={p.size}
        aria-describedby={describedBy(p.id, p.hint)}
        aria-invalid={invalid(state, p.field)}
        data-kg-autofocus={p.autofocus ? "" : undefined}
      />
    </Field>
  );
};

/** One choice of a select or check group. */
export interface Choice {
  value: string;
  label: string;
  /** In a check group: checking it switches the other boxes off (e.g. "All rules"). */
  exclusive?: boolean;
  /**
   * In a select another one narrows: the value of that select this choice
   * belongs to (offered only while it is chosen); none: always offered.
   */
  group?: string;
}

/** A labelled select. */
export const SelectField: FC<
  FieldProps & {
    choices: Choice[];
    value?: string;
    disabled?: boolean;
    /** The select (a selector) whose choices this one's value narrows to its group (kg.js). */
    narrows?: string;
  }
> = (p) => {
  const state = useContext(FormContext);
  const value = posted(state, p.field) ?? p.value;
  return (
    <Field id={p.id} field={p.field} label={p.label} hint={p.hint} class={p.class}>
      <select
        id={p.id}
        name={p.field}
        disabled={p.disabled}
        aria-describedby={describedBy(p.id, p.hint)}
        aria-invalid={invalid(state, p.field)}
        data-kg-narrows={p.narrows}
      >
        {p.choices.map((c) => (
          c.group === undefined
            ? <option value={c.value} selected={c.value === value}>{c.label}</option>
            : (
              <option value={c.value} selected={c.value === value} data-kg-group={c.group}>
                {c.label}
              </option>
            )
        ))}
      </select>
    </Field>
  );
};

/** A checkbox with its label after it (a switch-like row). */
export const CheckField: FC<
  FieldProps & {
    checked?: boolean;
    disabled?: boolean;
    /** Controls (a selector) this box enables while checked. */
    enables?: string;
    /** Controls (a selector) this box disables while checked. */
    disables?: string;
  }
> = (p) => {
  const state = useContext(FormContext);
  const checked = state.values ? state.values.has(p.field) : p.checked;
  return (
    <div class={fieldClass("field check", state, p.field, p.class)} data-field={p.field}>
      <input
        id={p.id}
        name={p.field}
        type="checkbox"
        checked={checked}
        disabled={p.disabled}
        aria-describedby={describedBy(p.id, p.hint)}
        aria-invalid={invalid(state, p.field)}
        data-kg-enables={p.enables}
        data-kg-disables={p.disables}
      />
      <label for={p.id}>{p.label}</label>
      {p.hint && <p class="hint" id={`${p.id}-hint`}>{p.hint}</p>}
      <FieldError id={p.id} field={p.field} label={p.label} />
    </div>
  );
};

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
}> = (p) => {
  const state = useContext(FormContext);
  const checked = state.values ? state.values.get(p.field) ?? [] : p.checked;
  return (
    <fieldset
      class={fieldClass("field group", state, p.field)}
      data-field={p.field}
      id={p.id}
      aria-describedby={describedBy(p.id, p.hint)}
      aria-invalid={invalid(state, p.field)}
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
              checked={checked.includes(c.value)}
              disabled={p.disabled}
              data-kg-disables={c.exclusive ? `#${p.id} input[type="checkbox"]` : undefined}
            />
            <label for={`${p.id}-${i}`}>{c.label}</label>
          </li>
        ))}
      </ul>
      <FieldError id={p.id} field={p.field} label={p.legend} />
    </fieldset>
  );
};

/** A hidden input (e.g. the version read, sent back as `If-Match`); the posted value wins. */
export const HiddenField: FC<{ name: string; value: string }> = (p) => {
  const state = useContext(FormContext);
  return <input type="hidden" name={p.name} value={posted(state, p.name) ?? p.value} />;
};

/** The alert above a form that summarises what went wrong. */
export const FormAlert: FC<{ id: string }> = ({ id }) => {
  const text = useContext(FormContext).alert;
  return (
    <div class="alert error" id={id} role="alert" data-form-error hidden={text === ""}>
      {text}
    </div>
  );
};

/** A notice box; `kind` picks the colour. */
export const Notice: FC<
  PropsWithChildren<{ kind: "ok" | "warn" | "error" | "info"; id?: string; role?: string }>
> = (p) => (
  <div class={`alert ${p.kind}`} id={p.id} role={p.role}>
    {p.children}
  </div>
);

/**
 * The store banner: nothing while the store answers; while no etcd member
 * does (degraded mode), an alert that changes are refused and what goes on.
 */
export const StoreBanner: FC<{ store: StoreHealth; now: number }> = ({ store, now }) => {
  if (store.connected) return null;
  const since = store.lastContactMs === 0
    ? ""
    : ` (last answer ${formatAgo(store.lastContactMs, now)})`;
  return (
    <Notice kind="error" id="store-state" role="alert">
      <strong>Store unreachable: changes refused.</strong>{" "}
      No etcd member answers this appliance{since}. It keeps forwarding and admitting the unlocks it
      knows; users, rules, settings and revocations cannot be changed until the store answers again,
      and then it catches up by itself.
    </Notice>
  );
};

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
