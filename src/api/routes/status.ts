/**
 * Live state of the data plane: counters, connection tracking, unlocked IPs
 * (which an operator may revoke) and tracked flows.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { snapshotCounters } from "../../datapath/counters.ts";
import type { ClockHealth } from "../../host/clock_health.ts";
import { formatIpv4, parseIpv4 } from "../../packet/address.ts";
import { formatIpv6, formatIpv6Prefix, ipv6MaskInto } from "../../packet/ipv6_address.ts";
import { networkCovers, parseIpNetwork, parseUnlockIp } from "../../packet/ip_text.ts";
import { ANY_ROLE, authOf, requireRole } from "../auth.ts";
import { notFound } from "../errors.ts";
import { StoreUnavailableError } from "../../store/errors.ts";
import { errors, jsonResponse, newRouter, SIGNED_IN } from "../_router.ts";
import { storeHealthView } from "./health.ts";
import type { UnlockRecord } from "../../datapath/messages.ts";
import { FlowSchema, StatusSchema, UnlockSchema } from "../schemas.ts";
import type { ApiDeps, AppEnv } from "../types.ts";

type Unlock = z.infer<typeof UnlockSchema>;

const readers = [requireRole(...ANY_ROLE)];
const tags = ["status"];

const status = createRoute({
  operationId: "getStatus",
  method: "get",
  path: "/status",
  tags,
  summary: "Counters, conntrack, unlock count, store and clock health, uptime",
  middleware: readers,
  security: SIGNED_IN,
  responses: { 200: jsonResponse(StatusSchema, "Status"), ...errors(401) },
});

const unlocks = createRoute({
  operationId: "listUnlocks",
  method: "get",
  path: "/status/unlocks",
  tags,
  summary: "Unlocked source IPs",
  middleware: readers,
  security: SIGNED_IN,
  responses: {
    200: jsonResponse(z.object({ unlocks: z.array(UnlockSchema) }), "Unlocks"),
    ...errors(401),
  },
});

const revoke = createRoute({
  operationId: "revokeUnlock",
  method: "delete",
  path: "/status/unlocks/{ip}",
  tags,
  summary: "Revoke the unlock of an IP",
  description: "Names the unlock by its source: an IPv4 address, or an IPv6 address or prefix " +
    "(URL-encoded, `2001:db8:1:2::%2F64`). An IPv6 address or prefix finds the unlock whose " +
    "network holds it, so any address inside an unlocked /64 ends that unlock.",
  middleware: [requireRole("administrator", "operator")],
  security: SIGNED_IN,
  request: {
    params: z.object({
      ip: z.string().refine(
        (s) => parseIpv4(s) !== null || (s.includes(":") && parseIpNetwork(s) !== null),
        "must be an IPv4 address, an IPv6 address or an IPv6 prefix (2001:db8:1:2::/64)",
      )
        .openapi({
          param: { name: "ip", in: "path" },
          description: "203.0.113.10, 2001:db8:1:2::99 or 2001:db8:1:2::/64 (URL-encoded)",
          example: "203.0.113.10",
        }),
    }),
  },
  responses: {
    200: jsonResponse(z.object({ unlock: UnlockSchema }), "The unlock that ended"),
    ...errors(400, 401, 403, 404, 503),
  },
});

const flows = createRoute({
  operationId: "listFlows",
  method: "get",
  path: "/status/flows",
  tags,
  summary: "Tracked flows",
  middleware: readers,
  security: SIGNED_IN,
  request: {
    query: z.object({ limit: z.coerce.number().int().min(1).max(10000).default(100) }),
  },
  responses: {
    200: jsonResponse(z.object({ flows: z.array(FlowSchema) }), "Flows"),
    ...errors(400, 401),
  },
});

/**
 * The unlock `query` names: an IPv4 address is the unlock of that address;
 * an IPv6 address or prefix the unlock whose network holds it (the unlock
 * of a /64 is found by any address inside it). Null when none does.
 */
export function unlockOf(unlocks: readonly UnlockRecord[], query: string): UnlockRecord | null {
  const q = parseIpNetwork(query);
  if (q === null) return null;
  return unlocks.find((u) => {
    const n = parseUnlockIp(u.ip);
    return n !== null && networkCovers(n, q);
  }) ?? null;
}

/**
 * The key the data plane gives the unlock that would hold `query` under
 * `unlockPrefix`: an IPv4 address itself, an IPv6 address or longer prefix
 * masked to `unlockPrefix` (`2001:db8:1:2::/64`; bare for 128). Null for an
 * IPv6 prefix wider than that (no single unlock's key).
 */
export function unlockKeyOf(query: string, unlockPrefix: number): string | null {
  const q = parseIpNetwork(query);
  if (q === null) return null;
  if (q.family === 4) return formatIpv4(q.net.addr);
  if (q.net.prefix < unlockPrefix) return null;
  const net = { addr: new Uint32Array(4), prefix: unlockPrefix };
  ipv6MaskInto(q.net.addr, 0, unlockPrefix, net.addr);
  return unlockPrefix === 128 ? formatIpv6(net.addr) : formatIpv6Prefix(net);
}

/** An unlock as the API shows it: the WAN address "" when the data plane did not say. */
export function unlockView(u: UnlockRecord & { wanAddress?: string }): Unlock {
  return { ...u, wanAddress: u.wanAddress ?? "" };
}

/** The status router; `clock` reads the (cached) clock health. */
export function statusRouter(
  deps: ApiDeps,
  clock: () => Promise<ClockHealth>,
  startedAt: number,
): OpenAPIHono<AppEnv> {
  const app = newRouter();
  app.openapi(status, async (c) => {
    const [conntrack, list, health] = await Promise.all([
      deps.datapath.conntrack(),
      deps.datapath.unlocks(),
      clock(),
    ]);
    return c.json({
      uptimeSec: Math.max(0, Math.floor((deps.clock.now() - startedAt) / 1000)),
      counters: snapshotCounters(deps.datapath.counters),
      conntrack,
      unlocks: list.length,
      store: storeHealthView(deps.store),
      clock: health,
    }, 200);
  });
  app.openapi(unlocks, async (c) => {
    return c.json({ unlocks: (await deps.datapath.unlocks()).map(unlockView) }, 200);
  });
  app.openapi(revoke, async (c) => {
    const { ip } = c.req.valid("param");
    // Degraded, a revoke here alone would come back from the store's copy: refuse it, as every write.
    if (!deps.store.health().connected) {
      throw new StoreUnavailableError(
        `Cannot revoke ${ip}: the store is unreachable (degraded mode)`,
      );
    }
    const by = authOf(c).user.name;
    // The unlock's own key first (one message); the table is listed only when that misses.
    const key = unlockKeyOf(ip, deps.config.ipv6.unlockPrefix);
    let removed = key === null ? null : await deps.datapath.revoke(key, by);
    if (removed === null) {
      const found = unlockOf(await deps.datapath.unlocks(), ip);
      removed = found && await deps.datapath.revoke(found.ip, by);
    }
    if (!removed) throw notFound(`${ip} is not unlocked`);
    // Every node of a shared store ends its copy on the note this leaves.
    await deps.store.unlocks.revokeUnlock(removed.ip, by);
    return c.json({ unlock: unlockView(removed) }, 200);
  });
  app.openapi(flows, async (c) => {
    return c.json({ flows: await deps.datapath.flows(c.req.valid("query").limit) }, 200);
  });
  return app;
}
