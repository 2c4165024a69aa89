/** A reader of Server-Sent Events (the WHATWG event-stream format) from a response body. */

/** One dispatched event. */
export interface SseMessage {
  /** The `id:` field, when sent. */
  id?: string;
  /** The `event:` field, when sent. */
  event?: string;
  /** The `data:` lines joined by newlines. */
  data: string;
}

/** Applies one non-blank line to `m`; comment lines (`:` first) are ignored. */
function applyLine(m: { id?: string; event?: string; data: string[] }, line: string): void {
  if (line.startsWith(":")) return;
  const i = line.indexOf(":");
  const field = i === -1 ? line : line.slice(0, i);
  // One space after the colon belongs to the syntax, not the value.
  const value = i === -1 ? "" : line.slice(i + 1).replace(/^ /, "");
  if (field === "data") m.data.push(value);
  else if (field === "event") m.event = value;
  else if (field === "id") m.id = value;
}

/** The events of `body` as they arrive; ends when the stream does. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  let buffer = "";
  let m: { id?: string; event?: string; data: string[] } = { data: [] };
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop()!; // the last piece may be an unfinished line
    for (const line of lines) {
      if (line !== "") {
        applyLine(m, line);
        continue;
      }
      // A blank line dispatches the event, when it has data.
      if (m.data.length > 0) yield { id: m.id, event: m.event, data: m.data.join("\n") };
      m = { data: [] };
    }
  }
}
