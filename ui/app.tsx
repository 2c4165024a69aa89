/**
 * The web UI: server-rendered pages (hono/jsx) over the management API, small
 * ES modules under `/static/` for forms and live updates, and the stand-alone
 * knock page at `/knock/`. Pages need a signed-in cookie session; without
 * one they redirect to `/login`. Mount it beside the API:
 *
 * ```ts
 * const app = createApp(deps);
 * app.route("/", createUi(deps));
 * ```
 *
 * The UI adds no middleware of its own (a sub-app's `use("*")` would run for
 * the API's paths too), so the API's security headers cover every page.
 */
import { type Context, Hono } from "hono";
import type { Child, FC, PropsWithChildren } from "hono/jsx";
import { resolveAuth } from "../src/api/auth.ts";
import { createApp } from "../src/api/app.ts";
import type { ApiDeps, AuthContext } from "../src/api/types.ts";
import { EVENT_TYPES } from "../src/log/events.ts";
import { type Fetcher, PageApi, PageError } from "./_api.ts";
import { knockPage, STATIC_DIR, staticFiles } from "./_static.ts";
import {
  canOperate,
  type EventView,
  type Flow,
  type Forward,
  type OpenPorts,
  type Role,
  type Settings,
  type Status,
  type Unlock,
  type User,
  type Viewer,
} from "./_types.ts";
import { Layout, type NavKey } from "./components.tsx";
import { Dashboard, DASHBOARD_FLOWS } from "./pages/dashboard.tsx";
import { EVENTS_SHOWN, EventsPage } from "./pages/events.tsx";
import { LoginPage } from "./pages/login.tsx";
import { ForwardForm, OpenPortsForm, RulesList, type RuleUser } from "./pages/rules.tsx";
import { SettingsPage } from "./pages/settings.tsx";
import { EnrollmentPanel, MfaRotation, UserForm, UsersList } from "./pages/users.tsx";
import { eventMatches } from "./static/format.js";

/** Options of `createUi`. */
export interface UiOptions {
  /** The API the pages read through; default a private `createApp(deps)` (same store). */
  api?: Fetcher;
  /** Read static files from disk on every request (for UI development). */
  reloadStatic?: boolean;
  /** Where the static files are (default `ui/static/`). */
  staticDir?: URL;
}

/** What a page handler gets besides the request. */
interface PageContext {
  viewer: Viewer;
  api: PageApi;
  auth: AuthContext;
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

/** The signed-in cookie session of a page request (bearer tokens do not open pages). */
async function pageAuth(c: Context, deps: ApiDeps): Promise<AuthContext | null> {
  if (c.req.header("authorization") !== undefined) return null;
  const auth = await resolveAuth(c, deps.store);
  return auth?.kind === "cookie" ? auth : null;
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

/** Wraps a page: sign-in redirect, role check, no caching, API failures as error pages. */
function pageRoute(deps: ApiDeps, api: Fetcher) {
  return (allowed: Allowed, render: PageRender) => async (c: Context) => {
    const auth = await pageAuth(c, deps);
    if (auth === null) {
      const url = new URL(c.req.url);
      return c.redirect(`/login?next=${encodeURIComponent(url.pathname + url.search)}`, 303);
    }
    c.header("Cache-Control", "no-store");
    const viewer: Viewer = {
      name: auth.user.name,
      role: auth.user.role,
      csrfToken: auth.session.csrfToken,
    };
    if (allowed !== "any" && !allowed.includes(viewer.role)) {
      const roles = allowed.join(" or ");
      return errorPage(
        c,
        viewer,
        403,
        `This page needs the ${roles} role; you are ${viewer.role}.`,
      );
    }
    try {
      return await render(c, { viewer, api: new PageApi(api, c), auth });
    } catch (e) {
      if (e instanceof PageError) return errorPage(c, viewer, e.status, e.message);
      throw e;
    }
  };
}

/** Renders a page inside the layout. */
function render(
  c: Context,
  p: PageContext,
  title: string,
  nav: NavKey,
  scripts: string[],
  body: Child,
) {
  return c.html(
    <Layout title={title} nav={nav} viewer={p.viewer} scripts={scripts}>
      {body}
    </Layout>,
  );
}

async function dashboard(c: Context, p: PageContext): Promise<Response> {
  const [status, unlocks, flows] = await Promise.all([
    p.api.must<Status>("/api/v1/status"),
    p.api.must<{ unlocks: Unlock[] }>("/api/v1/status/unlocks"),
    p.api.must<{ flows: Flow[] }>(`/api/v1/status/flows?limit=${DASHBOARD_FLOWS}`),
  ]);
  return render(
    c,
    p,
    "Dashboard",
    "dashboard",
    ["dashboard.js"],
    <Dashboard
      status={status}
      unlocks={unlocks.unlocks}
      flows={flows.flows}
      canRevoke={canOperate(p.viewer)}
    />,
  );
}

async function ruleNames(p: PageContext): Promise<string[]> {
  const r = await p.api.must<{ forwards: Forward[]; openPorts: OpenPorts[] }>("/api/v1/rules");
  return [...r.forwards, ...r.openPorts].map((x) => x.name).sort();
}

function userPath(c: Context): string {
  return `/api/v1/users/${encodeURIComponent(c.req.param("name") ?? "")}`;
}

async function usersList(c: Context, p: PageContext): Promise<Response> {
  const { users } = await p.api.must<{ users: User[] }>("/api/v1/users");
  users.sort((a, b) => a.name.localeCompare(b.name));
  return render(
    c,
    p,
    "Users",
    "users",
    ["users.js"],
    <UsersList users={users} me={p.viewer.name} />,
  );
}

async function userNew(c: Context, p: PageContext): Promise<Response> {
  const rules = await ruleNames(p);
  return render(
    c,
    p,
    "Add user",
    "users",
    ["users.js"],
    <>
      <UserForm rules={rules} />
      <EnrollmentPanel back="/users" />
    </>,
  );
}

async function userEdit(c: Context, p: PageContext): Promise<Response> {
  const [user, rules] = await Promise.all([p.api.must<User>(userPath(c)), ruleNames(p)]);
  return render(
    c,
    p,
    `Edit user ${user.name}`,
    "users",
    ["users.js"],
    <UserForm user={user} rules={rules} />,
  );
}

async function userMfa(c: Context, p: PageContext): Promise<Response> {
  const user = await p.api.must<User>(userPath(c));
  const back = p.viewer.role === "administrator" ? "/users" : "/";
  return render(
    c,
    p,
    `New TOTP secret for ${user.name}`,
    "users",
    ["users.js"],
    <MfaRotation user={user} back={back} />,
  );
}

async function rulesList(c: Context, p: PageContext): Promise<Response> {
  const r = await p.api.must<{ forwards: Forward[]; openPorts: OpenPorts[] }>("/api/v1/rules");
  const byName = <T extends { name: string }>(a: T, b: T) => a.name.localeCompare(b.name);
  return render(
    c,
    p,
    "Rules",
    "rules",
    ["rules.js"],
    <RulesList
      forwards={r.forwards.sort(byName)}
      openPorts={r.openPorts.sort(byName)}
      canEdit={canOperate(p.viewer)}
    />,
  );
}

/** The users a rule may name. Read from the store: operators may not list users through the API. */
async function ruleUsers(deps: ApiDeps): Promise<RuleUser[]> {
  return (await deps.store.users.listUsers()).map((u) => ({
    name: u.name,
    knocking: u.knock.enabled && u.mfa.enrolled,
  }));
}

function ruleForm(deps: ApiDeps, kind: "forwards" | "open-ports", editing: boolean): PageRender {
  return async (c, p) => {
    const users = await ruleUsers(deps);
    const noun = kind === "forwards" ? "port forward" : "open-ports rule";
    if (!editing) {
      const form = kind === "forwards"
        ? <ForwardForm users={users} />
        : <OpenPortsForm users={users} />;
      return render(c, p, `Add ${noun}`, "rules", ["rules.js"], form);
    }
    const path = `/api/v1/rules/${kind}/${encodeURIComponent(c.req.param("name") ?? "")}`;
    const form = kind === "forwards"
      ? <ForwardForm users={users} rule={await p.api.must<Forward>(path)} />
      : <OpenPortsForm users={users} rule={await p.api.must<OpenPorts>(path)} />;
    return render(c, p, `Edit ${noun} ${c.req.param("name")}`, "rules", ["rules.js"], form);
  };
}

async function events(c: Context, p: PageContext): Promise<Response> {
  const type = c.req.query("type") ?? "";
  const query = c.req.query("q") ?? "";
  const known = (EVENT_TYPES as readonly string[]).includes(type);
  const path = `/api/v1/events?limit=10000${known ? `&type=${type}` : ""}`;
  const r = await p.api.must<{ events: EventView[]; lastSeq: number }>(path);
  const shown = r.events.filter((e) => eventMatches(e, query)).slice(-EVENTS_SHOWN);
  return render(
    c,
    p,
    "Events",
    "events",
    ["events.js"],
    <EventsPage
      events={shown}
      lastSeq={r.lastSeq}
      types={EVENT_TYPES}
      type={known ? type : ""}
      query={query}
    />,
  );
}

async function settings(c: Context, p: PageContext): Promise<Response> {
  const s = await p.api.must<Settings>("/api/v1/settings");
  return render(
    c,
    p,
    "Settings",
    "settings",
    ["settings.js"],
    <SettingsPage s={s} canEdit={p.viewer.role === "administrator"} />,
  );
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

/** The web UI over `deps`; mount it with `app.route("/", createUi(deps))`. */
export function createUi(deps: ApiDeps, options: UiOptions = {}): Hono {
  const api: Fetcher = options.api ?? createApp(deps, { swaggerUiDir: null });
  const page = pageRoute(deps, api);
  const app = new Hono();

  app.get("/static/:file", staticFiles(options.staticDir ?? STATIC_DIR, options.reloadStatic));
  app.get("/knock", (c) => c.redirect("/knock/", 301));
  app.get("/knock/", knockPage(undefined, options.reloadStatic));

  app.get("/login", async (c) => {
    const next = safeNext(c.req.query("next"));
    if (await pageAuth(c, deps)) return c.redirect(next, 303);
    c.header("Cache-Control", "no-store");
    return c.html(<LoginPage next={next} expired={c.req.query("expired") === "1"} />);
  });
  app.get("/", page("any", dashboard));
  app.get("/users", page(ADMINS, usersList));
  app.get("/users/new", page(ADMINS, userNew));
  app.get("/users/:name/edit", page(ADMINS, userEdit));
  app.get("/users/:name/mfa", page("any", selfOrAdmin(userMfa)));
  app.get("/rules", page("any", rulesList));
  app.get("/rules/forwards/new", page(OPERATORS, ruleForm(deps, "forwards", false)));
  app.get("/rules/forwards/:name/edit", page(OPERATORS, ruleForm(deps, "forwards", true)));
  app.get("/rules/open-ports/new", page(OPERATORS, ruleForm(deps, "open-ports", false)));
  app.get("/rules/open-ports/:name/edit", page(OPERATORS, ruleForm(deps, "open-ports", true)));
  app.get("/events", page("any", events));
  app.get("/settings", page(OPERATORS, settings));
  return app;
}
