/**
 * Appliance events: the most recent ones from the logger's rings, and a live
 * Server-Sent Events stream. A stream client that reconnects with
 * `Last-Event-ID` (or `?since=`) first gets what it missed, as long as the
 * rings still hold it. `?class=` picks event classes (each kept in its own
 * ring, so a flood of failures never pushes out the last success).
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { type SSEStreamingApi, streamSSE } from "hono/streaming";
import {
  EVENT_CLASSES,
  EVENT_TYPES,
  type EventClass,
  eventClass,
  type EventType,
} from "../../log/events.ts";
import type { LogEntry, Logger } from "../../log/logger.ts";
import { ANY_ROLE, requireRole } from "../auth.ts";
import { errors, jsonResponse, newRouter, SIGNED_IN } from "../_router.ts";
import { EventSchema } from "../schemas.ts";
import type { ApiDeps, AppEnv } from "../types.ts";

/** A comment line is sent this often on an idle stream, so proxies keep it open. */
export const KEEPALIVE_MS = 15_000;
/** A client that falls this many events behind is disconnected (it may resume). */
export const MAX_BACKLOG = 10_000;

const typeParam = z.enum(EVENT_TYPES as [EventType, ...EventType[]]).optional();
const seqParam = z.coerce.number().int().min(0).optional();
const CLASS_RE = new RegExp(`^(${EVENT_CLASSES.join("|")})(,(${EVENT_CLASSES.join("|")}))*$`);
const classParam = z.string().regex(
  CLASS_RE,
  `must be a comma-separated list of ${EVENT_CLASSES.join(", ")}`,
)
  .optional()
  .openapi({
    description: "Event classes, comma-separated (default all): `access` (knock successes, " +
      "penalties, unlock ends), `flow` (admitted flows), `system` (config changes, sign-ins, " +
      "start/stop, clock), `failure` (knock failures, refused replays, drops, failed sign-ins, " +
      "log summaries). Each class keeps its own recent history.",
    example: "access,system",
  });
const readers = [requireRole(...ANY_ROLE)];

const list = createRoute({
  operationId: "listEvents",
  method: "get",
  path: "/events",
  tags: ["events"],
  summary: "Recent events, oldest first",
  middleware: readers,
  security: SIGNED_IN,
  request: {
    query: z.object({
      limit: z.coerce.number().int().min(1).max(10000).default(100),
      type: typeParam,
      class: classParam,
      after: seqParam.openapi({ description: "Only events with a larger seq" }),
    }),
  },
  responses: {
    200: jsonResponse(
      z.object({ events: z.array(EventSchema), lastSeq: z.number().int() }),
      "Events",
    ),
    ...errors(400, 401),
  },
});

const stream = createRoute({
  operationId: "streamEvents",
  method: "get",
  path: "/events/stream",
  tags: ["events"],
  summary: "Live events (Server-Sent Events; id = seq, event = type)",
  middleware: readers,
  security: SIGNED_IN,
  request: {
    query: z.object({
      type: typeParam,
      class: classParam,
      since: seqParam.openapi({ description: "Resume after this seq (as Last-Event-ID)" }),
    }),
    headers: z.object({ "last-event-id": z.string().optional() }),
  },
  responses: {
    200: {
      description: "An event stream",
      content: { "text/event-stream": { schema: z.string() } },
    },
    ...errors(400, 401),
  },
});

/** An event as the API shows it. */
export function eventView(e: LogEntry) {
  return { seq: e.seq, ...e.event };
}

/** The classes a `class` query value names (all when absent). */
function classesOf(value: string | undefined): readonly EventClass[] {
  return value === undefined ? EVENT_CLASSES : [...new Set(value.split(","))] as EventClass[];
}

/** The sequence number to resume after, or null to start with new events. */
function resumeAfter(header: string | undefined, since: number | undefined): number | null {
  if (header !== undefined && /^\d{1,15}$/.test(header.trim())) return Number(header.trim());
  return since ?? null;
}

/** Feeds `logger`'s events (after `after`, of `type` if given) into `sse` until it is aborted. */
async function pump(
  sse: SSEStreamingApi,
  logger: Logger,
  after: number | null,
  type: EventType | undefined,
  classes: readonly EventClass[],
): Promise<void> {
  const queue: LogEntry[] = [];
  let wake = () => {};
  let closed = false;
  // Subscribe before reading the backlog, so nothing logged in between is lost.
  const unsubscribe = logger.subscribe((event, seq) => {
    queue.push({ seq, event });
    if (queue.length > MAX_BACKLOG) closed = true;
    wake();
  });
  sse.onAbort(() => {
    closed = true;
    wake();
  });
  let sent = after ?? logger.lastSeq;
  const send = async (e: LogEntry) => {
    if (e.seq <= sent) return;
    sent = e.seq;
    if (type !== undefined && e.event.type !== type) return;
    if (!classes.includes(eventClass(e.event))) return;
    await sse.writeSSE({
      id: String(e.seq),
      event: e.event.type,
      data: JSON.stringify(eventView(e)),
    });
  };
  try {
    await sse.write(": connected\n\n");
    if (after !== null) { for (const e of logger.entries(after, Infinity, classes)) await send(e); }
    while (!closed) {
      while (queue.length > 0 && !closed) await send(queue.shift()!);
      if (closed) break;
      const idle = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(true), KEEPALIVE_MS);
        wake = () => {
          clearTimeout(timer);
          resolve(false);
        };
      });
      wake = () => {};
      if (idle) await sse.write(": keep-alive\n\n");
    }
  } finally {
    unsubscribe();
  }
}

/** The events router. */
export function eventsRouter(deps: ApiDeps): OpenAPIHono<AppEnv> {
  const app = newRouter();
  app.openapi(list, (c) => {
    const { limit, type, after, class: cls } = c.req.valid("query");
    const all = deps.logger.entries(after ?? 0, Infinity, classesOf(cls))
      .filter((e) => !type || e.event.type === type);
    return c.json({ events: all.slice(-limit).map(eventView), lastSeq: deps.logger.lastSeq }, 200);
  });
  app.openapi(stream, (c) => {
    const { type, since, class: cls } = c.req.valid("query");
    const after = resumeAfter(c.req.valid("header")["last-event-id"], since);
    c.header("Cache-Control", "no-store");
    return streamSSE(c, (sse) => pump(sse, deps.logger, after, type, classesOf(cls)));
  });
  return app;
}
