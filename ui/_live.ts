/**
 * `/live`: the API's event stream (`/api/v1/events/stream`, JSON events)
 * relayed to the page as the same Server-Sent Events with the event's
 * one-line summary as data, rendered here like every other text of the UI.
 * The browser only uses the event type (which fragments to fetch again) and
 * says the summary aloud where a region asks for it.
 */
import { eventSummary } from "./_format.js";
import type { EventView } from "./_types.ts";

/** One SSE block of the API's stream -> the block sent to the page ("" to drop it). */
export function relayBlock(block: string): string {
  let id = "";
  let event = "";
  const data: string[] = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) return `${line}\n\n`;
    const colon = line.indexOf(":");
    const key = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (key === "id") id = value;
    else if (key === "event") event = value;
    else if (key === "data") data.push(value);
  }
  if (event === "" || !/^[a-z0-9-]+$/.test(event)) return "";
  let summary = event;
  try {
    summary = eventSummary(JSON.parse(data.join("\n")) as EventView);
  } catch { /* a malformed event is relayed by type only */ }
  const text = summary.replace(/[\r\n]+/g, " ");
  return `${id === "" ? "" : `id: ${id}\n`}event: ${event}\ndata: ${text}\n\n`;
}

/** A stream of SSE text turned into the page's stream (see `relayBlock`). */
export function relayStream(): TransformStream<string, string> {
  let buffer = "";
  return new TransformStream({
    transform(chunk, out) {
      buffer += chunk.replaceAll("\r\n", "\n");
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const sent = relayBlock(block);
        if (sent !== "") out.enqueue(sent);
      }
    },
  });
}
