/**
 * Recent appliance events, newest first, filtered by type and text. The
 * table is a fragment (`/fragments/events?type=&q=`), fetched again when the
 * filters change and whenever the live stream reports an event.
 */
import type { FC } from "hono/jsx";
import { Cell, type Choice, DataTable, EmptyRow, SelectField, TextField } from "../components.tsx";
import type { EventView } from "../_types.ts";
import { EVENT_HEADERS, eventCells } from "../_format.js";

/** How many events the page keeps. */
export const EVENTS_SHOWN = 300;

/** One event row; `data-type` drives the type filter. */
export const EventRow: FC<{ e: EventView }> = ({ e }) => {
  const [head, ...cells] = eventCells(e);
  return (
    <tr data-type={e.type} data-seq={String(e.seq)}>
      <th scope="row" data-label={head.label} class={head.cls}>{head.text}</th>
      {cells.map((c) => <Cell key={c.label} label={c.label} class={c.cls}>{c.text}</Cell>)}
    </tr>
  );
};

/** Props of the events page. */
export interface EventsProps {
  events: EventView[];
  types: readonly string[];
  type: string;
  query: string;
}

/** The count and the table: the fragment the filters and the live stream fetch. */
export const EventsTable: FC<EventsProps> = (p) => {
  const newest = [...p.events].reverse();
  const q = new URLSearchParams({ type: p.type, q: p.query }).toString();
  return (
    <div
      id="events-region"
      data-kg-src={`/fragments/events?${q}`}
      data-kg-events={p.types.join(" ")}
    >
      <p class="muted" id="event-count">
        {newest.length} event{newest.length === 1 ? "" : "s"}
      </p>
      <DataTable
        id="events"
        caption="Recent events, newest first"
        captionHidden
        headers={EVENT_HEADERS}
      >
        {newest.length === 0
          ? <EmptyRow span={EVENT_HEADERS.length} text="No events match." />
          : newest.map((e) => <EventRow key={e.seq} e={e} />)}
      </DataTable>
    </div>
  );
};

/** The filter form and the event table. */
export const EventsPage: FC<EventsProps> = (p) => {
  const choices: Choice[] = [
    { value: "", label: "All types" },
    ...p.types.map((t) => ({ value: t, label: t })),
  ];
  return (
    <>
      <form
        id="event-filter"
        class="card form filters"
        method="get"
        action="/events"
        role="search"
        data-kg-filter
        data-kg-target="#events-region"
      >
        <SelectField id="filter-type" field="type" label="Type" choices={choices} value={p.type} />
        <TextField
          id="filter-text"
          field="q"
          label="Search"
          placeholder="Address, user, rule…"
          value={p.query}
        />
        <div class="actions">
          <button type="submit" class="btn secondary">Filter</button>
        </div>
      </form>
      <div class="section-head">
        <span class="pill muted" id="live-state" data-kg-live>Connecting…</span>
      </div>
      <EventsTable {...p} />
    </>
  );
};
