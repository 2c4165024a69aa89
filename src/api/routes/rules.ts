/**
 * Port forwards (`/rules/forwards`) and open-ports rules
 * (`/rules/open-ports`). The body's shape is zod's (400); the store
 * validates the rule against every other rule, the users' first knock ports,
 * the management port and the addressing, and the API answers 409 (a clash
 * with another rule or user) or 422 listing every problem. Operators and
 * administrators write, viewers read.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Config } from "../../config/types.ts";
import type { OpenPortsRule, PortForwardRule } from "../../nat/rule.ts";
import { nptv6Map, nptv6TranslateText, parseIpv6Prefix } from "../../packet/mod.ts";
import { ALL_UPLINKS, type RuleInput, type RuleRecord } from "../../store/rules.ts";
import { ANY_ROLE, authOf, requireRole } from "../auth.ts";
import { notFound } from "../errors.ts";
import {
  changed,
  errors,
  ifMatch,
  jsonBody,
  jsonResponse,
  newRouter,
  SIGNED_IN,
} from "../_router.ts";
import {
  type ForwardInput,
  ForwardInputSchema,
  ForwardSchema,
  type OpenPortsInput,
  OpenPortsInputSchema,
  OpenPortsSchema,
} from "../schemas.ts";
import type { ApiDeps, AppEnv } from "../types.ts";

const NameParam = z.object({
  name: z.string().min(1).max(64).openapi({ param: { name: "name", in: "path" }, example: "web" }),
});
const IfMatchHeader = z.object({
  "if-match": z.string().optional().openapi({ description: "Expected rule version" }),
});
const readers = [requireRole(...ANY_ROLE)];
const writers = [requireRole("administrator", "operator")];

/** How one kind of rule is named in paths, the store and messages. */
interface Kind<I, O> {
  path: string;
  store: RuleInput["kind"];
  noun: string;
  /** The kind in operationIds: `list${plural}`, `get${one}`, ... */
  opName: { one: string; plural: string };
  tag: string;
  input: z.ZodType<I>;
  output: z.ZodType<O>;
  toRule: (body: I) => RuleInput;
}

function meta(r: RuleRecord) {
  return { createdAt: r.createdAt, updatedAt: r.updatedAt, version: r.version };
}

/** The rule's WAN binding, "all" where it has none. */
function binding(r: RuleRecord) {
  return { uplink: r.rule.uplink ?? ALL_UPLINKS, wanAddress: r.rule.wanAddress ?? ALL_UPLINKS };
}

/** A stored forward as the API shows it. */
export function forwardView(r: RuleRecord & { kind: "forward" }) {
  return { ...r.rule, ...binding(r), ...meta(r) };
}

/** A stored open-ports rule as the API shows it (a pinhole with its NPTv6 outside addresses). */
export function openPortsView(r: RuleRecord & { kind: "open" }, config: Config) {
  const outside = outsideAddresses(config, r.rule);
  return {
    ...r.rule,
    ...binding(r),
    ...(outside.length > 0 ? { outsideAddresses: outside } : {}),
    ...meta(r),
  };
}

/** Where the WAN reaches a pinhole's host through NPTv6: its address on each uplink with `npt6`. */
function outsideAddresses(config: Config, r: OpenPortsRule) {
  const lan = config.ipv6.enabled ? config.ipv6.lan : null;
  if (lan === null || !r.privateAddress.includes(":")) return [];
  const inside = parseIpv6Prefix(lan.network)!;
  return config.wan.flatMap((u) => {
    if (u.npt6 === null) return [];
    const m = nptv6Map(inside, parseIpv6Prefix(u.npt6.outside)!);
    const address = nptv6TranslateText(m, r.privateAddress);
    return address === null ? [] : [{ uplink: u.name, address }];
  });
}

function forwardRule(b: ForwardInput): RuleInput {
  const rule: PortForwardRule = { ...b, privatePorts: b.privatePorts ?? { ...b.publicPorts } };
  return { kind: "forward", rule };
}

function openRule(b: OpenPortsInput): RuleInput {
  const rule: OpenPortsRule = { ...b };
  return { kind: "open", rule };
}

function routesFor<I, O>(k: Kind<I, O>) {
  const tags = [k.tag];
  const item = `${k.path}/{name}`;
  return {
    list: createRoute({
      operationId: `list${k.opName.plural}`,
      method: "get",
      path: k.path,
      tags,
      summary: `Every ${k.noun}`,
      middleware: readers,
      security: SIGNED_IN,
      responses: {
        200: jsonResponse(z.object({ rules: z.array(k.output) }), "Rules"),
        ...errors(401),
      },
    }),
    get: createRoute({
      operationId: `get${k.opName.one}`,
      method: "get",
      path: item,
      tags,
      summary: `One ${k.noun}`,
      middleware: readers,
      security: SIGNED_IN,
      request: { params: NameParam },
      responses: { 200: jsonResponse(k.output, "The rule"), ...errors(401, 404) },
    }),
    create: createRoute({
      operationId: `create${k.opName.one}`,
      method: "post",
      path: k.path,
      tags,
      summary: `Create a ${k.noun}`,
      middleware: writers,
      security: SIGNED_IN,
      request: { body: jsonBody(k.input) },
      responses: {
        201: jsonResponse(k.output, "Created"),
        ...errors(400, 401, 403, 409, 422, 503),
      },
    }),
    replace: createRoute({
      operationId: `replace${k.opName.one}`,
      method: "put",
      path: item,
      tags,
      summary: `Replace (or rename) a ${k.noun}`,
      middleware: writers,
      security: SIGNED_IN,
      request: { params: NameParam, headers: IfMatchHeader, body: jsonBody(k.input) },
      responses: {
        200: jsonResponse(k.output, "Replaced"),
        ...errors(400, 401, 403, 404, 409, 422, 503),
      },
    }),
    remove: createRoute({
      operationId: `delete${k.opName.one}`,
      method: "delete",
      path: item,
      tags,
      summary: `Delete a ${k.noun}`,
      middleware: writers,
      security: SIGNED_IN,
      request: { params: NameParam },
      responses: { 204: { description: "Deleted" }, ...errors(401, 403, 404, 503) },
    }),
  };
}

/** Registers the five routes of one rule kind on `app`. */
function mountKind<I, O>(
  app: OpenAPIHono<AppEnv>,
  deps: ApiDeps,
  k: Kind<I, O>,
  view: (r: RuleRecord) => O,
): void {
  const r = routesFor(k);
  const rules = deps.store.rules;
  const getOfKind = async (name: string) => {
    const rec = await rules.getRule(name);
    if (rec.kind !== k.store) throw notFound(`${k.noun} "${name}" does not exist`);
    return rec;
  };

  app.openapi(r.list, async (c) => {
    const all = (await rules.listRules()).filter((x) => x.kind === k.store).map(view);
    return c.json({ rules: all }, 200);
  });
  app.openapi(r.get, async (c) => c.json(view(await getOfKind(c.req.valid("param").name)), 200));
  app.openapi(r.create, async (c) => {
    const actor = authOf(c).user.name;
    const rec = await rules.createRule(k.toRule(c.req.valid("json") as I), actor);
    await changed(deps, "rules", actor, `${k.noun} "${rec.rule.name}" created`);
    return c.json(view(rec), 201);
  });
  app.openapi(r.replace, async (c) => {
    const actor = authOf(c).user.name;
    const { name } = c.req.valid("param");
    const input = k.toRule(c.req.valid("json") as I);
    const version = ifMatch(c.req.valid("header")["if-match"]);
    await getOfKind(name);
    const rec = await rules.updateRule(name, input, actor, version);
    await changed(deps, "rules", actor, `${k.noun} "${name}" replaced`);
    return c.json(view(rec), 200);
  });
  app.openapi(r.remove, async (c) => {
    const actor = authOf(c).user.name;
    const { name } = c.req.valid("param");
    await getOfKind(name);
    await rules.deleteRule(name, actor);
    await changed(deps, "rules", actor, `${k.noun} "${name}" deleted`);
    return c.body(null, 204);
  });
}

/** The rules router: forwards, open ports, and both at once under `/rules`. */
export function rulesRouter(deps: ApiDeps): OpenAPIHono<AppEnv> {
  const app = newRouter();
  app.openapi(
    createRoute({
      operationId: "listRules",
      method: "get",
      path: "/rules",
      tags: ["rules"],
      summary: "Every rule of both kinds",
      middleware: readers,
      security: SIGNED_IN,
      responses: {
        200: jsonResponse(
          z.object({ forwards: z.array(ForwardSchema), openPorts: z.array(OpenPortsSchema) }),
          "Rules",
        ),
        ...errors(401),
      },
    }),
    async (c) => {
      const all = await deps.store.rules.listRules();
      return c.json({
        forwards: all.flatMap((r) => r.kind === "forward" ? [forwardView(r)] : []),
        openPorts: all.flatMap((r) => r.kind === "open" ? [openPortsView(r, deps.config)] : []),
      }, 200);
    },
  );
  app.openapi(
    createRoute({
      method: "get",
      path: "/rules/users",
      operationId: "listRuleUsers",
      tags: ["rules"],
      summary: "The users a rule may name (for operators, who may not list users)",
      middleware: writers,
      security: SIGNED_IN,
      responses: {
        200: jsonResponse(
          z.object({
            users: z.array(z.object({
              name: z.string(),
              knocking: z.boolean().openapi({ description: "Knock enabled and TOTP enrolled" }),
            })),
          }),
          "Users",
        ),
        ...errors(401, 403),
      },
    }),
    async (c) => {
      const users = (await deps.store.users.listUsers()).map((u) => ({
        name: u.name,
        knocking: u.knock.enabled && u.mfa.enrolled,
      }));
      return c.json({ users }, 200);
    },
  );
  mountKind(app, deps, {
    path: "/rules/forwards",
    store: "forward",
    noun: "port forward",
    opName: { one: "Forward", plural: "Forwards" },
    tag: "rules",
    input: ForwardInputSchema,
    output: ForwardSchema,
    toRule: forwardRule,
  }, (r) => forwardView(r as RuleRecord & { kind: "forward" }));
  mountKind(app, deps, {
    path: "/rules/open-ports",
    store: "open",
    noun: "open-ports rule",
    opName: { one: "OpenPortsRule", plural: "OpenPortsRules" },
    tag: "rules",
    input: OpenPortsInputSchema,
    output: OpenPortsSchema,
    toRule: openRule,
  }, (r) => openPortsView(r as RuleRecord & { kind: "open" }, deps.config));
  return app;
}
