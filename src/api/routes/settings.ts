/**
 * Appliance settings: idle timeout, knock tunables, syslog collectors and
 * limits (from the store; administrators change them) and, read-only, the
 * network layout from the configuration file.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Config } from "../../config/types.ts";
import { primaryWanAddress } from "../../config/uplinks.ts";
import type { SettingsRecord } from "../../store/settings.ts";
import { authOf, requireRole } from "../auth.ts";
import { uplinkAddresses, uplinkAddresses6 } from "../uplinks.ts";
import {
  changed,
  errors,
  ifMatch,
  jsonBody,
  jsonResponse,
  newRouter,
  SIGNED_IN,
} from "../_router.ts";
import { SettingsPatchSchema, SettingsSchema, type SettingsView } from "../schemas.ts";
import type { ApiDeps, AppEnv } from "../types.ts";

const get = createRoute({
  operationId: "getSettings",
  method: "get",
  path: "/settings",
  tags: ["settings"],
  summary: "Current settings",
  middleware: [requireRole("administrator", "operator")],
  security: SIGNED_IN,
  responses: { 200: jsonResponse(SettingsSchema, "Settings"), ...errors(401, 403) },
});

const patch = createRoute({
  operationId: "updateSettings",
  method: "patch",
  path: "/settings",
  tags: ["settings"],
  summary: "Change some settings (partial, merged one level deep)",
  middleware: [requireRole("administrator")],
  security: SIGNED_IN,
  request: {
    headers: z.object({ "if-match": z.string().optional() }),
    body: jsonBody(SettingsPatchSchema),
  },
  responses: { 200: jsonResponse(SettingsSchema, "Updated"), ...errors(400, 401, 403, 409, 503) },
});

/** The settings as the API shows them. */
export function settingsView(s: SettingsRecord, config: Config): SettingsView {
  return {
    idleTimeoutSeconds: s.idleTimeoutSeconds,
    knock: { ...s.knock },
    syslog: { collectors: s.syslog.collectors.map((c) => ({ ...c })) },
    limits: { ...s.limits },
    network: {
      wanAddress: primaryWanAddress(config),
      uplinks: config.wan.map((u) => ({
        name: u.name,
        interface: u.interface,
        addresses: uplinkAddresses(u),
        addresses6: uplinkAddresses6(u),
        gateway: u.gateway,
        gateway6: u.gateway6,
      })),
      lanAddress: config.lan.address,
      lanNetwork: config.lan.network,
      managementPort: config.management.port,
      managementWanAccess: config.management.wanAccess,
      ipv6: {
        enabled: config.ipv6.enabled,
        lanAddress: config.ipv6.lan?.address ?? null,
        lanNetwork: config.ipv6.lan?.network ?? null,
        unlockPrefix: config.ipv6.unlockPrefix,
        pairFamilies: config.ipv6.pairFamilies,
      },
    },
    version: s.version,
    updatedAt: s.updatedAt,
  };
}

/** The settings router. */
export function settingsRouter(deps: ApiDeps): OpenAPIHono<AppEnv> {
  const app = newRouter();
  app.openapi(get, async (c) => {
    return c.json(settingsView(await deps.store.settings.getSettings(), deps.config), 200);
  });
  app.openapi(patch, async (c) => {
    const actor = authOf(c).user.name;
    const version = ifMatch(c.req.valid("header")["if-match"]);
    const after = await deps.store.settings.updateSettings(c.req.valid("json"), actor, version);
    await changed(deps, "settings", actor, "settings changed");
    return c.json(settingsView(after, deps.config), 200);
  });
  return app;
}
