/**
 * Appliance events: the most recent ones from the logger's ring, and a live
 * Server-Sent Events stream. A stream client that reconnects with
 * `Last-Event-ID` (or `?since=`) first gets what it missed, as long as the
 * ring still holds it.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { type SSEStreamingApi, streamSSE } from "hono/streaming";
import { EVENT_TYPES, type EventType } from "../../log/events.ts";
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
    await sse.writeSSE({
      id: String(e.seq),
      event: e.event.type,
      data: JSON.stringify(eventView(e)),
    });
  };
  try {
    await sse.write(": connected\n\n");
    if (after !== null) { for (const e of logger.entries(after)) await send(e); }
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
    const { limit, type, after } = c.req.valid("query");
    const all = deps.logger.entries(after ?? 0).filter((e) => !type || e.event.type === type);
    return c.json({ events: all.slice(-limit).map(eventView), lastSeq: deps.logger.lastSeq }, 200);
  });
  app.openapi(stream, (c) => {
    const { type, since } = c.req.valid("query");
    const after = resumeAfter(c.req.valid("header")["last-event-id"], since);
    c.header("Cache-Control", "no-store");
    return streamSSE(c, (sse) => pump(sse, deps.logger, after, type));
  });
  return app;
}
