/**
 * The web UI of the appliance: dashboard (live unlocks), users with TOTP
 * enrolment, rules, events, settings, API tokens, and the stand-alone knock
 * page at `/knock/`. Mount it on the management API app and give it that app
 * to call, so every read and change goes through the API (roles, audit and
 * validation are the API's):
 *
 * ```ts
 * const app = createApp(deps);
 * app.route("/", createUi(deps, { api: app }));
 * Deno.serve(app.fetch);
 * ```
 *
 * One renderer: the server renders every page, table fragment and refused
 * form from the same TSX components (hono/jsx). The browser runs one module,
 * `static/kg.js` (under 400 lines, no dependencies), that posts forms, fetches
 * fragments and swaps them in, and refetches a fragment when the live
 * stream (`/live`) names an event it shows. htmx (`htmx.org`, in the npm
 * list) would do the same moving of HTML, but we chose our own module: the
 * current htmx is a new major (4.x) whose attributes and events differ from
 * the 2.x most documentation describes; its server-sent-events support is a
 * separate extension package; and under our CSP (no inline script or style)
 * it needs its indicator styles and `hx-on`/`js:` evaluation turned off by
 * configuration. What we need is four behaviours (submit, post-and-swap,
 * filter, refetch on event) plus two conventions (`KG-Location`,
 * `KG-Announce`), small enough to read whole and to test in Chromium.
 */
export { createUi, safeNext, type UiOptions } from "./app.tsx";
