// @ts-check
/// <reference lib="dom" />
/**
 * The live dashboard: the event stream says when unlocks change (a knock
 * succeeded, an unlock expired or was revoked, a flow was admitted) and the
 * tables are refreshed from the API; a slow poll keeps counters and relative
 * times current. Revoke buttons end an unlock.
 */
import { announce, api, ApiFailure, busy, cell, emptyRow, liveEvents } from "./api.js";
import {
  dropRows,
  flowCells,
  statRows,
  summaryItems,
  UNLOCK_HEADERS,
  unlockCells,
} from "./format.js";

/**
 * @typedef {import("./format.js").UnlockView} UnlockView
 * @typedef {import("./format.js").FlowView} FlowView
 * @typedef {import("./format.js").StatusView &
 *   { clock: { now: number, synchronised: boolean | null } }} StatusView
 */

const POLL_MS = 10_000;
const FLOWS_SHOWN = 20;
/** Event types after which the unlock table may have changed. */
const UNLOCK_EVENTS = ["knock-success", "unlock-expired", "unlock-revoked", "flow-admitted"];

const root = document.getElementById("dashboard");
const canRevoke = root?.dataset.canRevoke === "1";
/** The appliance's clock minus this browser's, so relative times use the appliance's. */
let skew = Number(root?.dataset.now ?? Date.now()) - Date.now();

/** @param {string} id */
function tbody(id) {
  return document.querySelector(`#${id} tbody`);
}

/** @param {string} text */
function showAlert(text) {
  const alert = document.getElementById("unlocks-alert");
  if (!alert) return;
  alert.textContent = text;
  alert.hidden = text === "";
}

/**
 * @param {UnlockView} u
 * @param {number} now
 */
function unlockRow(u, now) {
  const tr = document.createElement("tr");
  tr.dataset.ip = u.ip;
  const [head, ...rest] = unlockCells(u, now);
  tr.append(cell(head, true), ...rest.map((c) => cell(c)));
  if (canRevoke) {
    const td = document.createElement("td");
    td.dataset.label = "Actions";
    const b = document.createElement("button");
    b.type = "button";
    b.className = "btn small danger";
    b.dataset.revoke = u.ip;
    b.append("Revoke ");
    const hidden = document.createElement("span");
    hidden.className = "visually-hidden";
    hidden.textContent = u.ip;
    b.append(hidden);
    td.append(b);
    tr.append(td);
  }
  return tr;
}

/** @param {UnlockView[]} list */
function renderUnlocks(list) {
  const body = tbody("unlocks");
  if (!body) return;
  const now = Date.now() + skew;
  const sorted = [...list].sort((a, b) => b.unlockedAt - a.unlockedAt);
  const span = UNLOCK_HEADERS.length + (canRevoke ? 1 : 0);
  // Keep the focused Revoke button's row focusable across refreshes.
  const focused = document.activeElement instanceof HTMLElement
    ? document.activeElement.dataset.revoke
    : undefined;
  body.replaceChildren(
    ...(sorted.length === 0
      ? [emptyRow(span, "No IP is unlocked.")]
      : sorted.map((u) => unlockRow(u, now))),
  );
  if (focused) {
    const again = body.querySelector(`[data-revoke="${CSS.escape(focused)}"]`);
    if (again instanceof HTMLElement) again.focus();
  }
}

/** @param {FlowView[]} flows */
function renderFlows(flows) {
  const body = tbody("flows");
  if (!body) return;
  body.replaceChildren(
    ...(flows.length === 0 ? [emptyRow(9, "No flow is tracked.")] : flows.map((f) => {
      const tr = document.createElement("tr");
      const [head, ...rest] = flowCells(f);
      tr.append(cell(head, true), ...rest.map((c) => cell(c)));
      return tr;
    })),
  );
  const count = document.getElementById("flows-count");
  if (count) {
    count.textContent = flows.length >= FLOWS_SHOWN ? `first ${FLOWS_SHOWN}` : `${flows.length}`;
  }
}

/**
 * @param {string} id
 * @param {[string, string][]} rows
 * @param {[string, string]} labels
 */
function renderPairs(id, rows, labels) {
  const body = tbody(id);
  if (!body) return;
  body.replaceChildren(
    ...(rows.length === 0 ? [emptyRow(2, "None so far.")] : rows.map(([k, v]) => {
      const tr = document.createElement("tr");
      tr.append(
        cell({ label: labels[0], text: k }, true),
        cell({ label: labels[1], text: v, cls: "num" }),
      );
      return tr;
    })),
  );
}

/** @param {StatusView} s */
function renderStatus(s) {
  skew = s.clock.now - Date.now();
  // The clock banner is rendered by the server; a change of state (rare) reloads the page.
  if (root && root.dataset.clock !== String(s.clock.synchronised)) location.reload();
  const summary = document.getElementById("summary");
  if (summary) {
    summary.replaceChildren(
      ...summaryItems(s).map(([k, v]) => {
        const div = document.createElement("div");
        div.className = "stat";
        const dt = document.createElement("dt");
        dt.textContent = k;
        const dd = document.createElement("dd");
        dd.textContent = v;
        div.append(dt, dd);
        return div;
      }),
    );
  }
  renderPairs("traffic", statRows(s.counters.stats), ["Counter", "Value"]);
  renderPairs("drops", dropRows(s.counters.drops), ["Reason", "Packets"]);
}

/** @param {unknown} e */
function failed(e) {
  showAlert(`Cannot refresh: ${e instanceof Error ? e.message : e}`);
}

async function refreshUnlocks() {
  const r = /** @type {{ unlocks: UnlockView[] }} */ (await api("GET", "/api/v1/status/unlocks"));
  renderUnlocks(r.unlocks);
  showAlert("");
}

async function refreshAll() {
  const [status, flows] = await Promise.all([
    api("GET", "/api/v1/status"),
    api("GET", `/api/v1/status/flows?limit=${FLOWS_SHOWN}`),
  ]);
  renderStatus(/** @type {StatusView} */ (status));
  renderFlows(/** @type {{ flows: FlowView[] }} */ (flows).flows);
  await refreshUnlocks();
}

/** Coalesces refreshes: one runs at a time, and one more follows if asked meanwhile. */
let running = false;
let again = false;
async function refreshSoon() {
  if (running) {
    again = true;
    return;
  }
  running = true;
  try {
    do {
      again = false;
      await refreshAll();
      await new Promise((r) => setTimeout(r, 150));
    } while (again);
  } catch (e) {
    failed(e);
  } finally {
    running = false;
  }
}

/**
 * What to tell a screen reader about an event.
 * @param {string} type
 * @param {Record<string, unknown>} e
 * @returns {string | null}
 */
function spoken(type, e) {
  if (type === "knock-success") return `${e.ip} unlocked by ${e.user}`;
  if (type === "unlock-expired") return `Unlock of ${e.ip} expired`;
  if (type === "unlock-revoked") return `Unlock of ${e.ip} revoked`;
  return null;
}

/** @param {HTMLButtonElement} button */
async function revoke(button) {
  const ip = button.dataset.revoke ?? "";
  try {
    await busy(button, () => api("DELETE", `/api/v1/status/unlocks/${encodeURIComponent(ip)}`));
    announce(`Revoked the unlock of ${ip}`);
  } catch (e) {
    if (!(e instanceof ApiFailure && e.status === 404)) {
      showAlert(`Cannot revoke ${ip}: ${e instanceof Error ? e.message : e}`);
      return;
    }
    announce(`${ip} was no longer unlocked`);
  }
  await refreshUnlocks().catch(failed);
  // The row is gone: keep focus in the section rather than losing it to the page.
  if (!document.activeElement || document.activeElement === document.body) {
    const heading = document.getElementById("unlocks-h");
    heading?.setAttribute("tabindex", "-1");
    heading?.focus();
  }
}

if (root) {
  document.getElementById("unlocks")?.addEventListener("click", (e) => {
    const b = e.target instanceof Element ? e.target.closest("button[data-revoke]") : null;
    if (b instanceof HTMLButtonElement) revoke(b);
  });
  liveEvents(
    "live-state",
    (type, e) => {
      const text = spoken(type, e);
      if (text) announce(text);
      refreshSoon();
    },
    UNLOCK_EVENTS,
    refreshSoon,
  );
  setInterval(() => {
    if (document.visibilityState === "visible") refreshSoon();
  }, POLL_MS);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refreshSoon();
  });
}
