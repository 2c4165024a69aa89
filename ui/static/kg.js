// @ts-check
/// <reference lib="dom" />
/**
 * The only browser script of the UI. The server renders every page and every
 * fragment (hono/jsx); this module only moves HTML:
 *
 * - `form[data-kg-form]`: submitted with fetch (the session's CSRF token in
 *   `X-CSRF-Token`); the answer replaces `data-kg-target` (default: the form).
 * - `button[data-kg-post]`: POSTs to that URL (after `data-kg-confirm`), the
 *   answer replaces `data-kg-target`.
 * - `form[data-kg-filter]`: on change or typing, GETs `data-kg-src` with the
 *   form's fields as the query, replaces `data-kg-target`, and keeps the
 *   address bar in step (`action`).
 * - `[data-kg-src][data-kg-events]`: fetched again when the live stream
 *   (`/live`, one per page, server-rendered summaries) reports one of those
 *   event types (said aloud for types in `data-kg-speak`), and every
 *   `data-kg-poll` ms while the page is visible.
 *
 * Answer headers: `KG-Location` (go there; `KG-Flash` is shown on arrival),
 * `KG-Announce` (said through the live region). All URI-encoded.
 * Checkboxes with `data-kg-enables` / `data-kg-disables` (a selector) switch
 * other controls; such disabled controls are still sent with their form.
 * A `select[data-kg-narrows]` (a selector of another select) offers there only
 * the options whose `data-kg-group` is its value, and those without a group.
 */

const FLASH_KEY = "kg-flash";
/** @type {Map<string, { again: boolean }>} regions (by id) being fetched */
const inFlight = new Map();
/**
 * Answers of actions (a form sent, a button posted) swapped in so far. A
 * region's refresh sent before one of them may answer after it, with the
 * state from before the action (an unlock just revoked, back in its table):
 * such an answer is dropped and the region fetched again.
 */
let actionSwaps = 0;
let liveState = { text: "Connecting…", kind: "muted" };

/** @returns {string} the CSRF token of this page's session */
function csrfToken() {
  const meta = document.querySelector('meta[name="kg-csrf"]');
  return meta instanceof HTMLMetaElement ? meta.content : "";
}

/** @param {string} text */
function announce(text) {
  const region = document.getElementById("announcer");
  if (!region || text === "") return;
  region.textContent = "";
  // A fresh text node after a tick makes screen readers announce a repeated message too.
  setTimeout(() => region.textContent = text, 50);
}

/** @param {Response} res @param {string} name */
function header(res, name) {
  const v = res.headers.get(name);
  return v === null ? "" : decodeURIComponent(v);
}

/**
 * Sends a request the UI answers with HTML (or a `KG-Location`).
 * @param {string} method
 * @param {string} url
 * @param {BodyInit} [body]
 * @returns {Promise<{ res: Response, html: string } | null>} null when the browser leaves
 */
async function send(method, url, body) {
  /** @type {Record<string, string>} */
  const headers = { accept: "text/html", "KG-Request": "1" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
  const res = await fetch(url, { method, headers, body, credentials: "same-origin" });
  const to = header(res, "KG-Location");
  if (to !== "") {
    const flash = header(res, "KG-Flash");
    try {
      if (flash !== "") sessionStorage.setItem(FLASH_KEY, flash);
    } catch { /* storage disabled: the message is lost, nothing else */ }
    location.assign(to);
    return null;
  }
  announce(header(res, "KG-Announce"));
  return { res, html: await res.text() };
}

/**
 * Replaces `target` with `html`; focus goes to the first field marked
 * invalid, else to `[data-kg-focus]`, else back to the element of the same id.
 * @param {Element} target
 * @param {string} html
 */
function swap(target, html) {
  const focusedId = document.activeElement?.id ?? "";
  // The server never sends a password back: keep what was typed, unless the field is at fault.
  const typed = [...target.querySelectorAll('input[type="password"]')]
    .map((el) => /** @type {HTMLInputElement} */ (el)).filter((el) => el.id && el.value);
  const t = document.createElement("template");
  t.innerHTML = html;
  const added = [...t.content.children];
  for (const old of typed) {
    const again = t.content.getElementById(old.id);
    if (again instanceof HTMLInputElement && again.getAttribute("aria-invalid") !== "true") {
      again.value = old.value;
    }
  }
  target.replaceWith(t.content);
  for (const el of added) setUp(el);
  const pick = (/** @type {string} */ sel) =>
    added.map((el) => el.matches(sel) ? el : el.querySelector(sel)).find((el) => el) ?? null;
  const invalid = pick('[aria-invalid="true"]');
  const first = invalid?.matches("fieldset")
    ? invalid.querySelector("input:not([disabled]), select")
    : invalid;
  const next = first ?? pick("[data-kg-focus]") ??
    (focusedId === "" ? null : document.getElementById(focusedId));
  if (next instanceof HTMLElement) next.focus();
}

/**
 * Shows a failure that produced no HTML (network, 5xx without a body).
 * @param {Element} near
 * @param {string} text
 */
function failed(near, text) {
  const box = near.matches("[data-form-error]") ? near : near.querySelector("[data-form-error]");
  if (box instanceof HTMLElement) {
    box.textContent = text;
    box.hidden = false;
  } else announce(text);
}

/** @param {Element} el */
function targetOf(el) {
  const sel = el.getAttribute("data-kg-target");
  return (sel ? document.querySelector(sel) : null) ?? el;
}

/**
 * Runs `work` with `button` marked busy.
 * @param {Element | null} button
 * @param {() => Promise<void>} work
 */
async function busy(button, work) {
  const b = button instanceof HTMLButtonElement ? button : null;
  b?.setAttribute("aria-busy", "true");
  if (b) b.disabled = true;
  try {
    await work();
  } finally {
    if (b) {
      b.disabled = false;
      b.removeAttribute("aria-busy");
    }
  }
}

/**
 * The form's fields, with the controls a checkbox switched off included.
 * @param {HTMLFormElement} form
 * @param {HTMLElement | null} submitter
 */
function fieldsOf(form, submitter) {
  const data = new FormData(form, submitter);
  for (const el of form.elements) {
    if (!(el instanceof HTMLInputElement || el instanceof HTMLSelectElement)) continue;
    if (!el.disabled || el.name === "" || !el.hasAttribute("data-kg-switched")) continue;
    if (el instanceof HTMLInputElement && el.type === "checkbox" && !el.checked) continue;
    data.append(el.name, el.value);
  }
  return new URLSearchParams(/** @type {any} */ (data));
}

/** @param {SubmitEvent} e */
async function submitForm(e) {
  const form = e.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-kg-form")) return;
  e.preventDefault();
  const submitter = e.submitter instanceof HTMLElement ? e.submitter : null;
  const body = fieldsOf(form, submitter);
  const target = targetOf(form);
  await busy(submitter ?? form.querySelector('button[type="submit"]'), async () => {
    try {
      const r = await send("POST", form.action, body);
      if (r) actionSwap(target, r.html);
    } catch (err) {
      failed(form, `Cannot reach the appliance (${err instanceof Error ? err.message : err})`);
    }
  });
}

/** @param {HTMLButtonElement} button */
async function post(button) {
  const question = button.getAttribute("data-kg-confirm");
  if (question && !confirm(question)) return;
  const target = targetOf(button);
  await busy(button, async () => {
    try {
      const r = await send("POST", button.getAttribute("data-kg-post") ?? "");
      if (r && r.html !== "") actionSwap(target, r.html);
    } catch (err) {
      failed(target, `Cannot reach the appliance (${err instanceof Error ? err.message : err})`);
    }
  });
}

/**
 * Swaps in an action's answer, newer than any refresh still on its way.
 * @param {Element} target
 * @param {string} html
 */
function actionSwap(target, html) {
  actionSwaps++;
  swap(target, html);
}

/**
 * Fetches the fragment of the region `id` again from its `data-kg-src` (one
 * fetch at a time per region; one more if asked meanwhile).
 * @param {string} id
 */
async function refresh(id) {
  const running = inFlight.get(id);
  if (running) {
    running.again = true;
    return;
  }
  const state = { again: false };
  inFlight.set(id, state);
  try {
    do {
      state.again = false;
      const region = document.getElementById(id);
      if (!region) return;
      const before = actionSwaps;
      const r = await send("GET", region.getAttribute("data-kg-src") ?? "");
      if (!r) return;
      if (r.res.status >= 500) throw new Error(`${r.res.status} ${r.res.statusText}`);
      const now = document.getElementById(id);
      if (actionSwaps !== before) state.again = true; // older than an action's answer
      else if (now) swap(now, r.html);
    } while (state.again);
  } catch (err) {
    const region = document.getElementById(id);
    if (region) failed(region, `Cannot refresh: ${err instanceof Error ? err.message : err}`);
  } finally {
    inFlight.delete(id);
  }
}

/** @param {HTMLFormElement} form */
function filter(form) {
  const query = new URLSearchParams(/** @type {any} */ (new FormData(form))).toString();
  const target = targetOf(form);
  const src = (target.getAttribute("data-kg-src") ?? "").split("?")[0];
  target.setAttribute("data-kg-src", query === "" ? src : `${src}?${query}`);
  history.replaceState(null, "", query === "" ? form.action : `${form.action}?${query}`);
  refresh(target.id);
}

/** Applies every switching checkbox in `root` to the controls it names. */
function applySwitches(/** @type {ParentNode} */ root) {
  root.querySelectorAll("input[data-kg-enables], input[data-kg-disables]").forEach((box) => {
    if (!(box instanceof HTMLInputElement)) return;
    const on = box.getAttribute("data-kg-enables");
    const off = box.getAttribute("data-kg-disables");
    const form = box.form ?? document;
    for (const [sel, disable] of [[on, !box.checked], [off, box.checked]]) {
      if (typeof sel !== "string" || sel === "") continue;
      form.querySelectorAll(sel).forEach((el) => {
        if (el === box || !(el instanceof HTMLInputElement || el instanceof HTMLSelectElement)) {
          return;
        }
        el.disabled = Boolean(disable);
        el.setAttribute("data-kg-switched", "");
      });
    }
  });
}

/**
 * Narrows the select each `select[data-kg-narrows]` in `root` names to the
 * options of its value (the WAN IPs of the chosen WAN interface); a choice
 * that goes away falls back to the first one left.
 * @param {ParentNode} root
 */
function applyNarrowing(root) {
  root.querySelectorAll("select[data-kg-narrows]").forEach((by) => {
    if (!(by instanceof HTMLSelectElement)) return;
    const target = (by.form ?? document).querySelector(by.getAttribute("data-kg-narrows") ?? "");
    if (!(target instanceof HTMLSelectElement)) return;
    for (const option of target.options) {
      const group = option.getAttribute("data-kg-group");
      const away = group !== null && group !== by.value;
      option.hidden = away;
      option.disabled = away;
    }
    const chosen = target.options[target.selectedIndex];
    if (chosen === undefined || chosen.disabled) {
      target.selectedIndex = [...target.options].findIndex((o) => !o.disabled);
    }
  });
}

/** @param {Element} root */
function setUp(root) {
  applySwitches(root);
  applyNarrowing(root);
  root.querySelectorAll("[data-kg-live]").forEach((pill) => {
    pill.textContent = liveState.text;
    pill.className = `pill ${liveState.kind}`;
  });
}

/** Opens `/live` when a region wants events, and refreshes regions on their events. */
function live() {
  const regions = () => [...document.querySelectorAll("[data-kg-events]")];
  const types = new Set(
    regions().flatMap((r) => (r.getAttribute("data-kg-events") ?? "").split(" ")),
  );
  types.delete("");
  if (types.size === 0) return;
  /** @param {string} text @param {string} kind */
  const state = (text, kind) => {
    liveState = { text, kind };
    setUp(document.body);
  };
  const es = new EventSource("/live");
  es.onopen = () => {
    state("Live", "ok");
    for (const r of regions()) refresh(r.id);
  };
  es.onerror = () => {
    state(es.readyState === EventSource.CLOSED ? "Disconnected" : "Reconnecting…", "warn");
    // A closed stream is most often an ended session: reloading leads to the sign-in page.
    if (es.readyState === EventSource.CLOSED) {
      fetch("/api/v1/auth/me").then((r) => r.status === 401 && location.reload(), () => {});
    }
  };
  for (const type of types) {
    es.addEventListener(type, (m) => {
      for (const r of regions()) {
        if (!(r.getAttribute("data-kg-events") ?? "").split(" ").includes(type)) continue;
        const speak = (r.getAttribute("data-kg-speak") ?? "").split(" ");
        if (speak.includes(type)) announce(/** @type {MessageEvent} */ (m).data);
        refresh(r.id);
      }
    });
  }
  addEventListener("pagehide", () => es.close());
}

/** Refreshes polling regions while the page is visible. */
function poll() {
  document.querySelectorAll("[data-kg-poll]").forEach((region) => {
    const ms = Number(region.getAttribute("data-kg-poll"));
    const id = region.id;
    if (!(ms >= 1000) || id === "") return;
    setInterval(() => {
      const r = document.getElementById(id);
      if (r && document.visibilityState === "visible") refresh(id);
    }, ms);
  });
}

/** Shows the message the previous page left before sending the browser here. */
function showFlash() {
  let text = null;
  try {
    text = sessionStorage.getItem(FLASH_KEY);
    sessionStorage.removeItem(FLASH_KEY);
  } catch {
    return;
  }
  const main = document.getElementById("main");
  if (!text || !main) return;
  const box = document.createElement("div");
  box.className = "alert ok flash";
  box.setAttribute("role", "status");
  box.textContent = text;
  const h1 = main.querySelector("h1");
  if (h1) h1.after(box);
  else main.prepend(box);
  announce(text);
}

/** Copies the value of the input a `data-copy` button names (or selects it without a clipboard). */
async function copyFrom(/** @type {HTMLElement} */ button) {
  const input = document.getElementById(button.getAttribute("data-copy") ?? "");
  if (!(input instanceof HTMLInputElement)) return;
  try {
    await navigator.clipboard.writeText(input.value);
    announce("Copied");
  } catch {
    input.focus();
    input.select();
    announce("Selected; press Ctrl+C to copy");
  }
}

document.addEventListener("submit", submitForm);
document.addEventListener("click", (e) => {
  const el = e.target instanceof Element ? e.target.closest("[data-kg-post], [data-copy]") : null;
  if (el instanceof HTMLButtonElement && el.hasAttribute("data-kg-post")) post(el);
  else if (el instanceof HTMLElement && el.hasAttribute("data-copy")) copyFrom(el);
});
document.addEventListener("change", (e) => {
  const el = e.target;
  if (!(el instanceof HTMLInputElement || el instanceof HTMLSelectElement)) return;
  if (el.matches("[data-kg-enables], [data-kg-disables]")) applySwitches(el.form ?? document);
  if (el.matches("select[data-kg-narrows]")) applyNarrowing(el.form ?? document);
  const form = el.form;
  if (form?.hasAttribute("data-kg-filter")) filter(form);
});
/** @type {ReturnType<typeof setTimeout> | undefined} */
let typing;
document.addEventListener("input", (e) => {
  const el = e.target;
  const form = el instanceof HTMLInputElement && el.type !== "checkbox" ? el.form : null;
  if (!form?.hasAttribute("data-kg-filter")) return;
  clearTimeout(typing);
  typing = setTimeout(() => filter(form), 200);
});
document.addEventListener("submit", (e) => {
  const form = e.target;
  if (form instanceof HTMLFormElement && form.hasAttribute("data-kg-filter")) {
    e.preventDefault();
    filter(form);
  }
});
setUp(document.body);
showFlash();
live();
poll();
const autofocus = document.querySelector("[data-kg-autofocus]");
if (autofocus instanceof HTMLElement) autofocus.focus();
