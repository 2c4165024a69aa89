/**
 * `log tail [-n N] [-f] [--type T]`: recent appliance events, then (with
 * `-f`) the live stream until Ctrl-C; `--json` prints one event per line.
 * `audit [-n N]`: who changed what.
 */
import { type ApiClient, NetworkError } from "../api_client.ts";
import type { ApplianceEventView, AuditEntry } from "../api_types.ts";
import { clientFor, emit, type GlobalOptions, type ShellContext } from "../context.ts";
import { formatTime } from "../format.ts";
import type { Root } from "../program.ts";
import { readSse } from "../sse.ts";
import { renderTable } from "../tables.ts";
import { intArg } from "./args.ts";

/** One event as a log line: time, type, then its fields as key=value. */
export function eventLine(e: ApplianceEventView): string {
  const skip = new Set(["seq", "type", "time", "severity"]);
  const fields = Object.entries(e).filter(([k]) => !skip.has(k)).map(([k, v]) => {
    const s = typeof v === "string" ? v : JSON.stringify(v);
    return `${k}=${/[\s"=]/.test(s) ? JSON.stringify(s) : s}`;
  });
  return [formatTime(e.time), e.type, ...fields].join(" ");
}

function printEvent(ctx: ShellContext, o: GlobalOptions, e: ApplianceEventView): void {
  ctx.io.out(o.json ? JSON.stringify(e) : eventLine(e));
}

/** Prints live events after `after` until Ctrl-C; throws when the stream ends by itself. */
async function follow(
  ctx: ShellContext,
  api: ApiClient,
  o: GlobalOptions,
  after: number,
  type?: string,
): Promise<void> {
  const abort = new AbortController();
  const stop = ctx.io.onInterrupt(() => abort.abort());
  try {
    const res = await api.send(
      "GET",
      "/events/stream",
      { query: { since: after, type }, headers: { accept: "text/event-stream" } },
      abort.signal,
    );
    for await (const m of readSse(res.body!)) {
      if (m.data !== "") printEvent(ctx, o, JSON.parse(m.data) as ApplianceEventView);
    }
    if (!abort.signal.aborted) throw new NetworkError("The appliance closed the event stream");
  } catch (e) {
    if (!abort.signal.aborted) throw e;
  } finally {
    stop();
  }
}

/** Registers `log tail` and `audit`. */
export function registerLog(root: Root, ctx: ShellContext): void {
  const log = root.command("log").description("appliance events");
  log.command("tail").description("recent events; -f follows the live stream (Ctrl-C stops)")
    .option("-n, --lines <n>", "how many recent events (default 20)", intArg("lines", 1, 10000))
    .option("-f, --follow", "keep printing new events")
    .option("--type <type>", "only events of this type, e.g. knock-success")
    .action(async (_o, cmd) => {
      const o = cmd.optsWithGlobals();
      const api = await clientFor(ctx, o);
      const body = await api.get<{ events: ApplianceEventView[]; lastSeq: number }>("/events", {
        limit: o.lines ?? 20,
        type: o.type,
      });
      for (const e of body.events) printEvent(ctx, o, e);
      if (o.follow) await follow(ctx, api, o, body.lastSeq, o.type);
    });

  root.command("audit").description("the audit log, newest first (administrators)")
    .option("-n, --lines <n>", "how many entries (default 20)", intArg("lines", 1, 1000))
    .action(async (_o, cmd) => {
      const o = cmd.optsWithGlobals();
      const api = await clientFor(ctx, o);
      const body = await api.get<{ entries: AuditEntry[] }>("/audit", { limit: o.lines ?? 20 });
      emit(ctx, o, body, () =>
        body.entries.length === 0 ? "No audit entries." : renderTable(
          ["Time", "Actor", "Action", "Target"],
          body.entries.map((a) => [formatTime(a.time), a.actor, a.action, a.target]),
        ));
    });
}
