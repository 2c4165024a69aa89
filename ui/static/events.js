// @ts-check
/// <reference lib="dom" />
/**
 * Events: filter by type (asks the API again) and by text (in the page),
 * and show new events live at the top as the stream delivers them.
 */
import { announce, api, cell, emptyRow, liveEvents } from "./api.js";
import { EVENT_HEADERS, eventCells, eventMatches } from "./format.js";

/** @typedef {import("./format.js").EventView} EventView */

const meta = document.getElementById("events-meta");
const MAX = Number(meta?.dataset.max ?? 300);
const typeSelect = /** @type {HTMLSelectElement | null} */ (document.getElementById("filter-type"));
const textInput = /** @type {HTMLInputElement | null} */ (document.getElementById("filter-text"));
/** Events loaded for the current type filter, oldest first. */
/** @type {EventView[]} */
let loaded = [];
let lastSeq = Number(meta?.dataset.lastSeq ?? 0);
let fresh = 0;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let announceTimer;

/** @param {EventView} e */
function row(e) {
  const tr = document.createElement("tr");
  tr.dataset.type = e.type;
  tr.dataset.seq = String(e.seq);
  const [head, ...rest] = eventCells(e);
  tr.append(cell(head, true), ...rest.map((c) => cell(c)));
  return tr;
}

/** @param {EventView} e */
function matches(e) {
  const type = typeSelect?.value ?? "";
  return (type === "" || e.type === type) && eventMatches(e, textInput?.value ?? "");
}

function render() {
  const body = document.querySelector("#events tbody");
  if (!body) return;
  const shown = loaded.filter(matches).slice(-MAX).reverse();
  body.replaceChildren(
    ...(shown.length === 0 ? [emptyRow(EVENT_HEADERS.length, "No events match.")] : shown.map(row)),
  );
  const count = document.getElementById("event-count");
  if (count) count.textContent = `${shown.length} event${shown.length === 1 ? "" : "s"}`;
}

/** Keeps the address bar in step with the filters, so a reload shows the same. */
function syncUrl() {
  const params = new URLSearchParams();
  if (typeSelect?.value) params.set("type", typeSelect.value);
  if (textInput?.value) params.set("q", textInput.value);
  const qs = params.toString();
  history.replaceState(null, "", qs ? `/events?${qs}` : "/events");
}

async function load() {
  const type = typeSelect?.value ?? "";
  const r = /** @type {{ events: EventView[], lastSeq: number }} */ (
    await api("GET", `/api/v1/events?limit=10000${type ? `&type=${encodeURIComponent(type)}` : ""}`)
  );
  loaded = r.events;
  lastSeq = r.lastSeq;
  render();
}

/** @param {EventView} e */
function arrived(e) {
  if (typeof e.seq === "number" && e.seq <= lastSeq) return;
  lastSeq = e.seq ?? lastSeq;
  loaded.push(e);
  if (loaded.length > 10000) loaded.splice(0, loaded.length - 10000);
  if (!matches(e)) return;
  render();
  fresh++;
  // One announcement per few seconds, not one per event.
  if (!announceTimer) {
    announceTimer = setTimeout(() => {
      announce(`${fresh} new event${fresh === 1 ? "" : "s"}`);
      fresh = 0;
      announceTimer = undefined;
    }, 3000);
  }
}

document.getElementById("event-filter")?.addEventListener("submit", (e) => {
  e.preventDefault();
  syncUrl();
  load().catch(() => {});
});
typeSelect?.addEventListener("change", () => {
  syncUrl();
  load().catch(() => {});
});
/** @type {ReturnType<typeof setTimeout> | undefined} */
let typing;
textInput?.addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(() => {
    syncUrl();
    render();
  }, 200);
});

const types = Array.from(typeSelect?.options ?? []).map((o) => o.value).filter((v) => v !== "");
load().catch(() => {}).finally(() => {
  liveEvents("live-state", (_type, e) => arrived(/** @type {EventView} */ (e)), types);
});
