/**
 * The web UI of the appliance: dashboard (live unlocks), users with TOTP
 * enrolment, rules, events, settings, and the stand-alone knock page at
 * `/knock/`. Mount it on the management API app:
 *
 * ```ts
 * const app = createApp(deps);
 * app.route("/", createUi(deps));
 * Deno.serve(app.fetch);
 * ```
 */
export { createUi, safeNext, type UiOptions } from "./app.tsx";
