/**
 * The management API: a Hono app (`createApp`) with users and MFA
 * enrolment, rules, settings, live status, events (SSE), audit, metrics and
 * OpenAPI docs; `syncDatapath` pushes store state into the data plane;
 * `bootstrapStore` seeds a fresh store and creates the first administrator.
 *
 * ```ts
 * const admin = await bootstrapStore(store, config, logger);
 * if (admin) console.log(`Initial administrator: admin password=${admin.password} totp-secret=${admin.totpSecret}`);
 * await syncDatapath(store, datapath, config);
 * const app = createApp({ store, datapath, logger, clock, config, clockHealth,
 *   onChange: () => syncDatapath(store, datapath, config) });
 * const tls = await loadOrCreateTls({ storePath: config.store.path, ips: [config.lan.address] });
 * Deno.serve({ hostname: config.management.listen, port: config.management.port,
 *   cert: tls.cert, key: tls.key }, app.fetch); // src/host/tls.ts; HTTPS only
 * ```
 */
export * from "./app.ts";
export * from "./auth.ts";
export * from "./backup.ts";
export * from "./bootstrap.ts";
export * from "./drift.ts";
export * from "./enrollment.ts";
export * from "./errors.ts";
export * from "./fleet.ts";
export * from "./metrics.ts";
export * from "./schemas.ts";
export * from "./sync.ts";
export * from "./throttle.ts";
export * from "./types.ts";
