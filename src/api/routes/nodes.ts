/**
 * `GET /nodes`: every appliance registered in the shared store (the fleet)
 * with its heartbeat and counts, `up` while its heartbeat is at most three
 * intervals old. The node that answers shows its live record; on the KV
 * backend that is the only one. `DELETE /nodes/{name}` drops a node taken
 * out of the fleet from the list (a running node registers again).
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { ANY_ROLE, requireRole } from "../auth.ts";
import { errors, jsonResponse, newRouter, SIGNED_IN } from "../_router.ts";
import { NodeSchema, StoreHealthSchema } from "../schemas.ts";
import type { ApiDeps, AppEnv } from "../types.ts";
import { DOWN_AFTER_MS } from "../../store/nodes.ts";
import { conflict } from "../errors.ts";
import { storeHealthView } from "./health.ts";

type NodeView = z.infer<typeof NodeSchema>;

const tags = ["nodes"];

const list = createRoute({
  operationId: "listNodes",
  method: "get",
  path: "/nodes",
  tags,
  summary: "The appliances sharing this store, with their health",
  middleware: [requireRole(...ANY_ROLE)],
  security: SIGNED_IN,
  responses: {
    200: jsonResponse(
      z.object({
        nodes: z.array(NodeSchema),
        downAfterMs: z.number().int().openapi({
          description: "A node whose heartbeat is older than this is shown down",
          example: DOWN_AFTER_MS,
        }),
        store: StoreHealthSchema,
      }),
      "Nodes by name",
    ),
    ...errors(401),
  },
});

const remove = createRoute({
  operationId: "deleteNode",
  method: "delete",
  path: "/nodes/{name}",
  tags,
  summary: "Drop a node taken out of the fleet from the list",
  middleware: [requireRole("administrator")],
  security: SIGNED_IN,
  request: {
    params: z.object({
      name: z.string().min(1).max(63).openapi({
        param: { name: "name", in: "path" },
        example: "kg-b",
      }),
    }),
  },
  responses: { 204: { description: "Dropped (or was not listed)" }, ...errors(401, 403, 409, 503) },
});

/** The nodes router. */
export function nodesRouter(deps: ApiDeps): OpenAPIHono<AppEnv> {
  const app = newRouter();
  app.openapi(list, async (c) => {
    const [stored, me] = await Promise.all([
      deps.store.nodes.list(),
      deps.node?.record() ?? Promise.resolve(null),
    ]);
    const nodes: NodeView[] = stored.filter((n) => n.name !== me?.name)
      .map((n) => ({ ...n, self: false }));
    if (me !== null) nodes.push({ ...me, up: true, self: true });
    nodes.sort((a, b) => a.name.localeCompare(b.name));
    return c.json({ nodes, downAfterMs: DOWN_AFTER_MS, store: storeHealthView(deps.store) }, 200);
  });
  app.openapi(remove, async (c) => {
    const { name } = c.req.valid("param");
    if (name === deps.node?.self.name) {
      throw conflict(`Cannot drop node "${name}": it is the node answering`, "name");
    }
    await deps.store.nodes.remove(name);
    return c.body(null, 204);
  });
  return app;
}
