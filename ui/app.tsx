/**
 * The web UI: every page and every fragment is rendered here from the same
 * TSX components (hono/jsx), from what the management API answers. The
 * browser runs one small module (`/static/kg.js`) that submits forms and
 * fetches fragments and swaps them in; see ui/mod.ts for why not htmx.
 * Pages need a signed-in cookie session; without one they redirect to
 * `/login`. Mount it beside the API:
 *
 * ```ts
 * const app = createApp(deps);
 * app.route("/", createUi(deps, { api: app }));
 * ```
 *
 * The UI never reads the store: it calls the API in-process with the
 * browser's cookie and CSRF header (`PageApi`), so roles, audit and
 * validation are the API's. It adds no middleware of its own (a sub-app's
 * `use("*")` would run for the API's paths too), so the API's security
 * headers cover every page.
 */
import { type Context, Hono } from "hono";
import type { Child, FC, PropsWithChildren } from "hono/jsx";
import { createApp } from "../src/api/app.ts";
import type { ApiDeps } from "../src/api/types.ts";
import { EVENT_TYPES } from "../src/log/events.ts";
import { type ApiResult, type Fetcher, PageApi, PageError } from "./_api.ts";
import { eventMatches } from "./_format.js";
import {
  codeBody,
  collectorIndexes,
  loginBody,
  ruleBody,
  settingsBody,
  tokenBody,
  userBody,
  type Values,
} from "./_forms.ts";
import { relayStream } from "./_live.ts";
import { type FormState, placeProblems, type Problem, slotsOf, valuesOf } from "./_problems.ts";
import { knockPage, STATIC_DIR, staticFiles } from "./_static.ts";
import {
  canOperate,
  type EventView,
  type FleetNode,
  type Flow,
  type Forward,
  type OpenPorts,
  type Role,
  type Settings,
  type Status,
  type StoreHealth,
  type Unlock,
  type Uplink,
  type User,
  type Viewer,
} from "./_types.ts";
import { FormContext, Layout, type NavKey } from "./components.tsx";
import { Dashboard, DASHBOARD_FLOWS } from "./pages/dashboard.tsx";
import { EVENTS_SHOWN, EventsPage, EventsTable } from "./pages/events.tsx";
import { LoginForm, LoginPage } from "./pages/login.tsx";
import {
  ForwardForm,
  OpenPortsForm,
  RulesList,
  type RuleUplink,
  ruleUplinks,
  type RuleUser,
} from "./pages/rules.tsx";
import { MAX_COLLECTORS, SettingsForm, SettingsPage } from "./pages/settings.tsx";
import { TlsForm, type TlsView } from "./pages/tls.tsx";
import { type TokenInfo, TokensSection } from "./pages/tokens.tsx";
import {
  type Enrollment,
  EnrollmentPanel,
  EnrollmentSlot,
  MfaRotation,
  UserForm,
  UsersList,
  VerifyDone,
  VerifyForm,
} from "./pages/users.tsx";

/** Options of `createUi`. */
export interface UiOptions {
  /** The API the pages go through; default a private `createApp(deps)` (same store). */
  api?: Fetcher;
  /** Read static files from disk on every request (for UI development). */
  reloadStatic?: boolean;
  /** Where the static files are (default `ui/static/`). */
  staticDir?: URL;
}

/** What a page or fragment handler gets besides the request. */
interface PageContext {
  viewer: Viewer;
  api: PageApi;
  /** The store's state (`/health`), for the degraded-mode banner of full pages. */
  store?: StoreHealth;
}

type PageRender = (c: Context, p: PageContext) => Promise<Response>;

/** Who may open a page: everyone signed in, or the listed roles. */
type Allowed = "any" | readonly Role[];

const OPERATORS: readonly Role[] = ["administrator", "operator"];
const ADMINS: readonly Role[] = ["administrator"];

/** A path inside the UI to go back to after signing in, or "/". */
export function safeNext(next: string | undefined): string {
  if (next === undefined || !/^\/(?![/\\])[^\s]*$/.test(next) || next.startsWith("/login")) {
    return "/";
  }
  return next;
}

interface Me {
  user: { name: string };
  role: Role;
  kind: "cookie" | "token";
  csrfToken?: string;
}

/** The signed-in cookie session of a request, asked of the API (bearer tokens do not open pages). */
async function viewerOf(c: Context, api: Fetcher): Promise<Viewer | null> {
  if (c.req.header("authorization") !== undefined) return null;
  if (c.req.header("cookie") === undefined) return null;
  const me = await new PageApi(api, c).get<Me>("/api/v1/auth/me");
  if (!me.ok || me.body.kind !== "cookie") return null;
  return { name: me.body.user.name, role: me.body.role, csrfToken: me.body.csrfToken ?? "" };
}

const ErrorPage: FC<PropsWithChildren<{ viewer?: Viewer; status: number; message: string }>> = (
  p,
) => (
  <Layout
    title={p.status === 403 ? "Not allowed" : p.status === 404 ? "Not found" : "Something failed"}
    viewer={p.viewer}
  >
    <div class="alert error" role="alert">
      <p>{p.message}</p>
    </div>
    <p>
      <a href="/">Back to the dashboard</a>
    </p>
  </Layout>
);

function errorPage(c: Context, viewer: Viewer | undefined, status: number, message: string) {
  const code = status === 403 || status === 404 ? status : 500;
  return c.html(<ErrorPage viewer={viewer} status={code} message={message} />, code);
}

/** The answer that sends the browser elsewhere (kg.js follows `KG-Location`). */
function go(c: Context, to: string, flash?: string): Response {
  const headers: Record<string, string> = { "KG-Location": encodeURIComponent(to) };
  if (flash !== undefined) headers["KG-Flash"] = encodeURIComponent(flash);
  return c.body(null, 200, headers);
}

/** Sets the text kg.js says through the live region. */
function announce(c: Context, text: string): void {
  c.header("KG-Announce", encodeURIComponent(text));
}

/** A role check failed: the page says so (a page) or the fragment shows it. */
function notAllowed(allowed: readonly Role[], viewer: Viewer): string {
  return `This needs the ${allowed.join(" or ")} role; you are ${viewer.role}.`;
}

/** Wraps a page: sign-in redirect, role check, no caching, API failures as error pages. */
function pageRoute(api: Fetcher) {
  return (allowed: Allowed, render: PageRender) => async (c: Context) => {
    const viewer = await viewerOf(c, api);
    if (viewer === null) {
      const url = new URL(c.req.url);
      return c.redirect(`/login?next=${encodeURIComponent(url.pathname + url.search)}`, 303);
    }
    c.header("Cache-Control", "no-store");
    if (allowed !== "any" && !allowed.includes(viewer.role)) {
      return errorPage(c, viewer, 403, notAllowed(allowed, viewer));
    }
    try {
      const pageApi = new PageApi(api, c);
      const health = await pageApi.get<{ store: StoreHealth }>("/api/v1/health");
      const store = health.ok ? health.body.store : undefined;
      return await render(c, { viewer, api: pageApi, store });
    } catch (e) {
      if (e instanceof PageError) return errorPage(c, viewer, e.status, e.message);
      throw e;
    }
  };
}

/**
 * Wraps a fragment or a form action: without a session the browser is sent
 * to sign in; a role or API failure is answered as an alert fragment.
 */
function actionRoute(api: Fetcher) {
  return (allowed: Allowed, render: PageRender) => async (c: Context) => {
    const viewer = await viewerOf(c, api);
    if (viewer === null) {
      const back = safeNext(new URL(c.req.header("referer") ?? "/", c.req.url).pathname);
      return go(c, `/login?expired=1&next=${encodeURIComponent(back)}`);
    }
    c.header("Cache-Control", "no-store");
    if (allowed !== "any" && !allowed.includes(viewer.role)) {
      return c.html(<Alert text={notAllowed(allowed, viewer)} />, 403);
    }
    try {
      return await render(c, { viewer, api: new PageApi(api, c) });
    } catch (e) {
      if (e instanceof PageError) return c.html(<Alert text={e.message} />, e.status as 404);
      throw e;
    }
  };
}

const Alert: FC<{ text: string }> = ({ text }) => (
  <div class="alert error" role="alert" data-form-error>{text}</div>
);

/**
 * Renders `render()` when it is itself rendered: precompiled JSX builds an
 * element's markup when it is created, so a form must be created inside the
 * provider for its fields to see the form's state.
 */
const Deferred: FC<{ render: () => Child }> = ({ render }) => <>{render()}</>;

/** The fields of a posted form. */
async function posted(c: Context): Promise<Map<string, string[]>> {
  return valuesOf(new URLSearchParams(await c.req.text()));
}

/**
 * Renders a form again after a refused post: the posted values, and each
 * problem beside the field it names (the form's error slots are found by
 * rendering it once without problems).
 */
async function formAnswer(
  c: Context,
  form: (state: FormState) => Child,
  problems: readonly Problem[],
  values: Map<string, string[]> | undefined,
  status: 200 | 400 | 401 | 403 | 404 | 409 | 412 | 428 | 503 = 400,
): Promise<Response> {
  const bare: FormState = { values, errors: new Map(), alert: "" };
  const first = await (
    <FormContext.Provider value={bare}>
      <Deferred render={() => form(bare)} />
    </FormContext.Provider>
  ).toString();
  const state = placeProblems(problems, slotsOf(String(first)), values);
  return c.html(
    <FormContext.Provider value={state}>
      <Deferred render={() => form(state)} />
    </FormContext.Provider>,
    status,
  );
}

/**
 * The status a refused API call is answered with: the form again with the
 * API's message, a 503 (the store unreachable, degraded mode) included, so
 * nothing typed is lost; any other 5xx becomes a page error.
 */
function refused(
  r: ApiResult<unknown> & { ok: false },
): 400 | 401 | 403 | 404 | 409 | 412 | 428 | 503 {
  const known = [400, 401, 403, 404, 409, 412, 428, 503] as const;
  const s = known.find((k) => k === r.status);
  if (s === undefined) throw new PageError(r.status, r.error.message);
  return s;
}

/** Renders a page inside the layout. */
function render(c: Context, p: PageContext, title: string, nav: NavKey, body: Child) {
  // The dashboard shows the banner itself, in its live fragment.
  const store = nav === "dashboard" ? undefined : p.store;
  return c.html(
    <Layout title={title} nav={nav} viewer={p.viewer} store={store}>
      {body}
    </Layout>,
  );
}

// --- Dashboard ----------------------------------------------------------------

async function dashboardData(p: PageContext) {
  const [status, unlocks, flows, uplinks, nodes] = await Promise.all([
    p.api.must<Status>("/api/v1/status"),
    p.api.must<{ unlocks: Unlock[] }>("/api/v1/status/unlocks"),
    p.api.must<{ flows: Flow[] }>(`/api/v1/status/flows?limit=${DASHBOARD_FLOWS}`),
    p.api.must<{ uplinks: Uplink[] }>("/api/v1/uplinks"),
    p.api.must<{ nodes: FleetNode[] }>("/api/v1/nodes"),
  ]);
  return {
    status,
    unlocks: unlocks.unlocks,
    flows: flows.flows,
    uplinks: uplinks.uplinks,
    nodes: nodes.nodes,
    canRevoke: canOperate(p.viewer),
  };
}

async function dashboard(c: Context, p: PageContext): Promise<Response> {
  return render(c, p, "Dashboard", "dashboard", <Dashboard {...await dashboardData(p)} />);
}

async function dashboardFragment(c: Context, p: PageContext): Promise<Response> {
  return c.html(<Dashboard {...await dashboardData(p)} />);
}

async function revokeUnlock(c: Context, p: PageContext): Promise<Response> {
  const ip = c.req.param("ip") ?? "";
  const r = await p.api.send("DELETE", `/api/v1/status/unlocks/${encodeURIComponent(ip)}`);
  let alert: string | undefined;
  if (r.ok) announce(c, `Revoked the unlock of ${ip}`);
  else if (r.status === 404) announce(c, `${ip} was no longer unlocked`);
  else alert = `Cannot revoke ${ip}: ${r.error.message}`;
  return c.html(<Dashboard {...await dashboardData(p)} focusUnlocks alert={alert} />);
}

// --- Users ----------------------------------------------------------------------

async function ruleNames(p: PageContext): Promise<string[]> {
  const r = await p.api.must<{ forwards: Forward[]; openPorts: OpenPorts[] }>("/api/v1/rules");
  return [...r.forwards, ...r.openPorts].map((x) => x.name).sort();
}

function userPath(c: Context): string {
  return `/api/v1/users/${encodeURIComponent(c.req.param("name") ?? "")}`;
}

async function usersOf(p: PageContext): Promise<User[]> {
  const { users } = await p.api.must<{ users: User[] }>("/api/v1/users");
  return users.sort((a, b) => a.name.localeCompare(b.name));
}

async function usersList(c: Context, p: PageContext): Promise<Response> {
  return render(c, p, "Users", "users", <UsersList users={await usersOf(p)} me={p.viewer.name} />);
}

async function userNew(c: Context, p: PageContext): Promise<Response> {
  const rules = await ruleNames(p);
  return render(
    c,
    p,
    "Add user",
    "users",
    <div id="user-new">
      <UserForm rules={rules} />
    </div>,
  );
}

async function userCreate(c: Context, p: PageContext): Promise<Response> {
  const values = await posted(c);
  const { body, problems } = userBody(values, false);
  const rules = await ruleNames(p);
  const form = () => (
    <div id="user-new">
      <UserForm rules={rules} />
    </div>
  );
  if (problems.length > 0) return formAnswer(c, form, problems, values);
  const r = await p.api.send<{ user: User; enrollment: Enrollment }>("POST", "/api/v1/users", {
    body,
  });
  if (!r.ok) return formAnswer(c, form, r.problems, values, refused(r));
  announce(c, `Secret created for ${r.body.user.name}. Scan the QR code, then enter a code.`);
  return c.html(
    <div id="user-new">
      <EnrollmentPanel user={r.body.user.name} back="/users" enrollment={r.body.enrollment} />
    </div>,
  );
}

async function userEdit(c: Context, p: PageContext): Promise<Response> {
  const [user, rules] = await Promise.all([p.api.must<User>(userPath(c)), ruleNames(p)]);
  return render(c, p, `Edit user ${user.name}`, "users", <UserForm user={user} rules={rules} />);
}

async function userSave(c: Context, p: PageContext): Promise<Response> {
  const values = await posted(c);
  const [user, rules] = await Promise.all([p.api.must<User>(userPath(c)), ruleNames(p)]);
  const { body, problems } = userBody(values, true);
  const form = () => <UserForm user={user} rules={rules} />;
  if (problems.length > 0) return formAnswer(c, form, problems, values);
  const r = await p.api.send("PATCH", userPath(c), {
    body,
    version: values.get("version")?.[0] ?? user.version,
  });
  if (!r.ok) return formAnswer(c, form, r.problems, values, refused(r));
  return go(c, "/users", `User ${user.name} saved.`);
}

async function userDelete(c: Context, p: PageContext): Promise<Response> {
  const name = c.req.param("name") ?? "";
  const r = await p.api.send("DELETE", userPath(c));
  if (r.ok) announce(c, `User ${name} deleted`);
  const alert = r.ok ? undefined : `Cannot delete "${name}": ${r.error.message}`;
  return c.html(<UsersList users={await usersOf(p)} me={p.viewer.name} alert={alert} />);
}

async function userMfa(c: Context, p: PageContext): Promise<Response> {
  const user = await p.api.must<User>(userPath(c));
  return render(
    c,
    p,
    `New TOTP secret for ${user.name}`,
    "users",
    <MfaRotation user={user} back={backOf(p)} />,
  );
}

function backOf(p: PageContext): string {
  return p.viewer.role === "administrator" ? "/users" : "/";
}

async function userRotate(c: Context, p: PageContext): Promise<Response> {
  const name = c.req.param("name") ?? "";
  const r = await p.api.send<{ enrollment: Enrollment }>("POST", `${userPath(c)}/mfa/rotate`);
  if (!r.ok) return c.html(<EnrollmentSlot alert={r.error.message} />, refused(r));
  announce(c, `Secret created for ${name}. Scan the QR code, then enter a code.`);
  return c.html(<EnrollmentPanel user={name} back={backOf(p)} enrollment={r.body.enrollment} />);
}

async function userVerify(c: Context, p: PageContext): Promise<Response> {
  const name = c.req.param("name") ?? "";
  const values = await posted(c);
  const { body, problems } = codeBody(values);
  const form = () => <VerifyForm user={name} />;
  if (problems.length > 0) return formAnswer(c, form, problems, values);
  const r = await p.api.send("POST", `${userPath(c)}/mfa/verify`, { body });
  if (!r.ok) {
    const onCode = r.problems.map((x) => x.field === "" ? { ...x, field: "code" } : x);
    return formAnswer(c, form, onCode, values, refused(r));
  }
  announce(c, `User ${name} is active with this secret.`);
  return c.html(<VerifyDone user={name} back={backOf(p)} />);
}

/** Only administrators, or the user themselves, rotate a user's secret. */
function selfOrAdmin(render: PageRender): PageRender {
  return (c, p) => {
    if (p.viewer.role !== "administrator" && p.viewer.name !== c.req.param("name")) {
      throw new PageError(403, "Only administrators may change another user's secret.");
    }
    return render(c, p);
  };
}

// --- Rules ----------------------------------------------------------------------

type RuleKind = "forwards" | "open-ports";

async function rulesOf(p: PageContext) {
  const r = await p.api.must<{ forwards: Forward[]; openPorts: OpenPorts[] }>("/api/v1/rules");
  const byName = <T extends { name: string }>(a: T, b: T) => a.name.localeCompare(b.name);
  return { forwards: r.forwards.sort(byName), openPorts: r.openPorts.sort(byName) };
}

async function rulesList(c: Context, p: PageContext): Promise<Response> {
  return render(
    c,
    p,
    "Rules",
    "rules",
    <RulesList {...await rulesOf(p)} canEdit={canOperate(p.viewer)} />,
  );
}

async function ruleDelete(c: Context, p: PageContext): Promise<Response> {
  const kind = c.req.param("kind") as RuleKind;
  const name = c.req.param("name") ?? "";
  const r = await p.api.send("DELETE", `/api/v1/rules/${kind}/${encodeURIComponent(name)}`);
  if (r.ok) announce(c, `Rule ${name} deleted`);
  const alert = r.ok ? undefined : `Cannot delete "${name}": ${r.error.message}`;
  return c.html(<RulesList {...await rulesOf(p)} canEdit={canOperate(p.viewer)} alert={alert} />);
}

/** The users a rule may name, from the API's list for rule editors. */
async function ruleUsers(p: PageContext): Promise<RuleUser[]> {
  return (await p.api.must<{ users: RuleUser[] }>("/api/v1/rules/users")).users;
}

function ruleKind(c: Context): RuleKind | null {
  const k = c.req.param("kind");
  return k === "forwards" || k === "open-ports" ? k : null;
}

function ruleApiPath(kind: RuleKind, name: string): string {
  return `/api/v1/rules/${kind}/${encodeURIComponent(name)}`;
}

/** The uplinks a rule may be bound to. */
async function uplinksOf(p: PageContext): Promise<RuleUplink[]> {
  return ruleUplinks((await p.api.must<{ uplinks: Uplink[] }>("/api/v1/uplinks")).uplinks);
}

function ruleFormOf(
  kind: RuleKind,
  users: RuleUser[],
  uplinks: RuleUplink[],
  rule?: Forward | OpenPorts,
) {
  return kind === "forwards"
    ? <ForwardForm users={users} uplinks={uplinks} rule={rule as Forward | undefined} />
    : <OpenPortsForm users={users} uplinks={uplinks} rule={rule as OpenPorts | undefined} />;
}

function ruleForm(editing: boolean): PageRender {
  return async (c, p) => {
    const kind = ruleKind(c);
    if (kind === null) throw new PageError(404, "No such kind of rule.");
    const [users, uplinks] = await Promise.all([ruleUsers(p), uplinksOf(p)]);
    const noun = kind === "forwards" ? "port forward" : "open-ports rule";
    if (!editing) return render(c, p, `Add ${noun}`, "rules", ruleFormOf(kind, users, uplinks));
    const name = c.req.param("name") ?? "";
    const rule = await p.api.must<Forward | OpenPorts>(ruleApiPath(kind, name));
    return render(c, p, `Edit ${noun} ${name}`, "rules", ruleFormOf(kind, users, uplinks, rule));
  };
}

function ruleSave(editing: boolean): PageRender {
  return async (c, p) => {
    const kind = ruleKind(c);
    if (kind === null) throw new PageError(404, "No such kind of rule.");
    const values = await posted(c);
    const [users, uplinks] = await Promise.all([ruleUsers(p), uplinksOf(p)]);
    const name = c.req.param("name") ?? "";
    const rule = editing
      ? await p.api.must<Forward | OpenPorts>(ruleApiPath(kind, name))
      : undefined;
    const form = () => ruleFormOf(kind, users, uplinks, rule);
    const { body, problems } = ruleBody(kind, values);
    if (problems.length > 0) return formAnswer(c, form, problems, values);
    const r = rule === undefined
      ? await p.api.send("POST", `/api/v1/rules/${kind}`, { body })
      : await p.api.send("PUT", ruleApiPath(kind, name), {
        body,
        version: values.get("version")?.[0] ?? rule.version,
      });
    if (!r.ok) return formAnswer(c, form, r.problems, values, refused(r));
    return go(c, "/rules", `Rule ${body.name} saved.`);
  };
}

// --- Events ---------------------------------------------------------------------

async function eventsData(c: Context, p: PageContext) {
  const type = c.req.query("type") ?? "";
  const query = c.req.query("q") ?? "";
  const known = (EVENT_TYPES as readonly string[]).includes(type);
  const path = `/api/v1/events?limit=10000${known ? `&type=${type}` : ""}`;
  const r = await p.api.must<{ events: EventView[]; lastSeq: number }>(path);
  const shown = r.events.filter((e) => eventMatches(e, query)).slice(-EVENTS_SHOWN);
  return { events: shown, types: EVENT_TYPES, type: known ? type : "", query };
}

async function events(c: Context, p: PageContext): Promise<Response> {
  return render(c, p, "Events", "events", <EventsPage {...await eventsData(c, p)} />);
}

async function eventsFragment(c: Context, p: PageContext): Promise<Response> {
  return c.html(<EventsTable {...await eventsData(c, p)} />);
}

/** The API's event stream relayed with server-rendered summaries (see `_live.ts`). */
function liveStream(api: Fetcher): PageRender {
  return async (c) => {
    const headers: Record<string, string> = { accept: "text/event-stream" };
    const cookie = c.req.header("cookie");
    if (cookie !== undefined) headers.cookie = cookie;
    const last = c.req.header("last-event-id");
    if (last !== undefined) headers["last-event-id"] = last;
    const url = new URL("/api/v1/events/stream", c.req.url).href;
    // When the page goes, cancelling the relayed body cancels the API stream beneath it.
    const res = await api.request(url, { headers }, c.env);
    if (!res.ok || res.body === null) {
      await res.body?.cancel();
      return c.body(null, res.status === 200 ? 502 : res.status as 401);
    }
    const body = res.body.pipeThrough(new TextDecoderStream()).pipeThrough(relayStream())
      .pipeThrough(new TextEncoderStream());
    return new Response(body, {
      headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store" },
    });
  };
}

// --- Settings -------------------------------------------------------------------

async function settings(c: Context, p: PageContext): Promise<Response> {
  const s = await p.api.must<Settings>("/api/v1/settings");
  const canEdit = p.viewer.role === "administrator";
  const tls = await p.api.send<TlsView>("GET", "/api/v1/tls");
  return render(
    c,
    p,
    "Settings",
    "settings",
    <>
      <SettingsPage s={s} canEdit={canEdit} />
      {tls.ok && <TlsForm t={tls.body} canEdit={canEdit} />}
    </>,
  );
}

async function tlsInstall(c: Context, p: PageContext): Promise<Response> {
  const values = await posted(c);
  const t = await p.api.must<TlsView>("/api/v1/tls");
  const canEdit = p.viewer.role === "administrator";
  const form = () => <TlsForm t={t} canEdit={canEdit} />;
  const body = { cert: values.get("cert")?.[0] ?? "", key: values.get("key")?.[0] ?? "" };
  const r = await p.api.send<TlsView>("PUT", "/api/v1/tls", { body });
  // The key is not sent back into the page.
  if (!r.ok) return formAnswer(c, form, r.problems, undefined, refused(r));
  return c.html(
    <TlsForm
      t={r.body}
      canEdit={canEdit}
      saved="Certificate installed; it is served from the next start of the appliance."
    />,
  );
}

/** The posted collectors renumbered 0..n-1, one removed (`remove-N`) or one added (`add`). */
function editCollectors(values: Values, op: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [k, v] of values) {
    if (!k.startsWith("syslog.collectors.")) out.set(k, [...v]);
  }
  const removed = /^remove-(\d+)$/.exec(op)?.[1];
  const kept = collectorIndexes(values).filter((i) => String(i) !== removed);
  kept.forEach((old, i) => {
    for (const f of ["host", "port", "format"]) {
      const v = values.get(`syslog.collectors.${old}.${f}`);
      if (v) out.set(`syslog.collectors.${i}.${f}`, [...v]);
    }
  });
  if (op === "add" && kept.length < MAX_COLLECTORS) {
    const i = kept.length;
    out.set(`syslog.collectors.${i}.host`, [""]);
    out.set(`syslog.collectors.${i}.port`, ["514"]);
    out.set(`syslog.collectors.${i}.format`, ["rfc5424"]);
  }
  return out;
}

async function settingsSave(c: Context, p: PageContext): Promise<Response> {
  const posted_ = await posted(c);
  const op = posted_.get("op")?.[0] ?? "save";
  const values = editCollectors(posted_, op);
  const count = collectorIndexes(values).length;
  const s = await p.api.must<Settings>("/api/v1/settings");
  const canEdit = p.viewer.role === "administrator";
  if (op !== "save") {
    const focus = op === "add" ? `collector-${count - 1}-host` : "add-collector";
    announce(c, op === "add" ? "Collector added" : "Collector removed");
    return formAnswer(
      c,
      () => <SettingsForm s={s} canEdit={canEdit} collectors={count} focus={focus} />,
      [],
      values,
      200,
    );
  }
  const form = () => <SettingsForm s={s} canEdit={canEdit} collectors={count} />;
  const { body, problems } = settingsBody(values);
  if (problems.length > 0) return formAnswer(c, form, problems, values);
  const r = await p.api.send<Settings>("PATCH", "/api/v1/settings", {
    body,
    version: values.get("version")?.[0] ?? s.version,
  });
  if (!r.ok) return formAnswer(c, form, r.problems, values, refused(r));
  return c.html(
    <SettingsForm
      s={r.body}
      canEdit={canEdit}
      saved="Settings saved. They apply to new knocks and unlocks now."
    />,
  );
}

// --- API tokens -----------------------------------------------------------------

async function tokensOf(p: PageContext): Promise<TokenInfo[]> {
  return (await p.api.must<{ tokens: TokenInfo[] }>("/api/v1/auth/tokens")).tokens;
}

const TOKENS_INTRO =
  "Tokens let scripts and Prometheus (/metrics) use the API as you, with your role. " +
  "They are sent as Authorization: Bearer <token> and cannot create further tokens.";

async function tokens(c: Context, p: PageContext): Promise<Response> {
  return render(
    c,
    p,
    "API tokens",
    "tokens",
    <>
      <p class="lead">{TOKENS_INTRO}</p>
      <TokensSection tokens={await tokensOf(p)} />
    </>,
  );
}

async function tokenCreate(c: Context, p: PageContext): Promise<Response> {
  const values = await posted(c);
  const { body, problems } = tokenBody(values);
  const list = await tokensOf(p);
  const section = (form: FormState) => <TokensSection tokens={list} form={form} />;
  if (problems.length > 0) return formAnswer(c, section, problems, values);
  const r = await p.api.send<TokenInfo & { token: string }>("POST", "/api/v1/auth/tokens", {
    body,
  });
  if (!r.ok) return formAnswer(c, section, r.problems, values, refused(r));
  announce(c, "Token created; copy it now, it is shown only once.");
  return c.html(<TokensSection tokens={await tokensOf(p)} created={r.body} />);
}

async function tokenRevoke(c: Context, p: PageContext): Promise<Response> {
  const id = c.req.param("id") ?? "";
  const r = await p.api.send("DELETE", `/api/v1/auth/tokens/${encodeURIComponent(id)}`);
  if (r.ok) announce(c, "Token revoked");
  const alert = r.ok ? undefined : `Cannot revoke the token: ${r.error.message}`;
  return c.html(<TokensSection tokens={await tokensOf(p)} alert={alert} focusList />);
}

// --- Sign-in --------------------------------------------------------------------

/** Signs in through the API and passes its session cookie on. */
function signIn(api: Fetcher) {
  return async (c: Context): Promise<Response> => {
    const values = await posted(c);
    const next = safeNext(values.get("next")?.[0]);
    const { body, problems } = loginBody(values);
    const form = () => <LoginForm next={next} />;
    if (problems.length > 0) return formAnswer(c, form, problems, values);
    const r = await new PageApi(api, c).send("POST", "/api/v1/auth/login", { body });
    if (!r.ok) {
      // A refused sign-in spends the code either way: ask for the next one.
      const retry = new Map(values);
      retry.delete("code");
      const placed = r.problems.some((x) => x.field !== "");
      const list = placed
        ? r.problems
        : [{ field: "", message: `${r.error.message}. Enter a fresh code.` }];
      return formAnswer(c, form, list, retry, refused(r));
    }
    for (const cookie of r.headers.getSetCookie()) c.header("Set-Cookie", cookie, { append: true });
    return go(c, next);
  };
}

function signOut(api: Fetcher) {
  return async (c: Context): Promise<Response> => {
    const r = await new PageApi(api, c).send("POST", "/api/v1/auth/logout");
    for (const cookie of r.headers.getSetCookie()) c.header("Set-Cookie", cookie, { append: true });
    return go(c, "/login");
  };
}

/** The web UI over `deps`; mount it with `app.route("/", createUi(deps, { api: app }))`. */
export function createUi(deps: ApiDeps, options: UiOptions = {}): Hono {
  const api: Fetcher = options.api ?? createApp(deps, { swaggerUiDir: null });
  const page = pageRoute(api);
  const act = actionRoute(api);
  const app = new Hono();

  app.get("/static/:file", staticFiles(options.staticDir ?? STATIC_DIR, options.reloadStatic));
  app.get("/knock", (c) => c.redirect("/knock/", 301));
  app.get("/knock/", knockPage(undefined, options.reloadStatic));

  app.get("/login", async (c) => {
    const next = safeNext(c.req.query("next"));
    if (await viewerOf(c, api)) return c.redirect(next, 303);
    c.header("Cache-Control", "no-store");
    return c.html(<LoginPage next={next} expired={c.req.query("expired") === "1"} />);
  });
  app.post("/login", signIn(api));
  app.post("/logout", signOut(api));
  app.get("/live", act("any", liveStream(api)));

  app.get("/", page("any", dashboard));
  app.get("/fragments/dashboard", act("any", dashboardFragment));
  app.post("/unlocks/:ip/revoke", act(OPERATORS, revokeUnlock));

  app.get("/users", page(ADMINS, usersList));
  app.get("/users/new", page(ADMINS, userNew));
  app.post("/users/new", act(ADMINS, userCreate));
  app.get("/users/:name/edit", page(ADMINS, userEdit));
  app.post("/users/:name/edit", act(ADMINS, userSave));
  app.post("/users/:name/delete", act(ADMINS, userDelete));
  app.get("/users/:name/mfa", page("any", selfOrAdmin(userMfa)));
  app.post("/users/:name/rotate", act("any", selfOrAdmin(userRotate)));
  app.post("/users/:name/verify", act("any", selfOrAdmin(userVerify)));

  app.get("/rules", page("any", rulesList));
  app.get("/rules/:kind/new", page(OPERATORS, ruleForm(false)));
  app.post("/rules/:kind/new", act(OPERATORS, ruleSave(false)));
  app.get("/rules/:kind/:name/edit", page(OPERATORS, ruleForm(true)));
  app.post("/rules/:kind/:name/edit", act(OPERATORS, ruleSave(true)));
  app.post("/rules/:kind/:name/delete", act(OPERATORS, ruleDelete));

  app.get("/events", page("any", events));
  app.get("/fragments/events", act("any", eventsFragment));
  app.get("/settings", page(OPERATORS, settings));
  app.post("/settings", act(OPERATORS, settingsSave));
  app.post("/settings/tls", act(ADMINS, tlsInstall));
  app.get("/tokens", page("any", tokens));
  app.post("/tokens", act("any", tokenCreate));
  app.post("/tokens/:id/revoke", act("any", tokenRevoke));
  return app;
}
