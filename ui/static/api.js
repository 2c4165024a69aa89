// @ts-check
/// <reference lib="dom" />
/**
 * The browser side of the API: JSON requests with the session's CSRF token,
 * errors placed next to the form field they name, announcements for screen
 * readers, and a flash message carried to the next page.
 */

/**
 * The API's error body (`{error: {status, code, message, field?, issues?}}`).
 * @typedef {{ status: number, code: string, message: string, field?: string,
 *   issues?: { field: string, reason: string }[] }} ApiErrorBody
 */

/** A request the API refused, or one that never reached it (status 0). */
export class ApiFailure extends Error {
  /**
   * @param {number} status
   * @param {ApiErrorBody} error
   */
  constructor(status, error) {
    super(error.message);
    this.name = "ApiFailure";
    this.status = status;
    this.error = error;
  }
}

/** @returns {string} the CSRF token of this page's session */
export function csrfToken() {
  const meta = /** @type {HTMLMetaElement | null} */ (
    document.querySelector('meta[name="kg-csrf"]')
  );
  return meta?.content ?? "";
}

/** Sends the browser to the sign-in page, coming back here afterwards. */
export function toLogin() {
  const next = location.pathname + location.search;
  location.assign(`/login?expired=1&next=${encodeURIComponent(next)}`);
}

/**
 * Calls the API and returns its JSON answer (null for 204).
 * @param {string} method
 * @param {string} path
 * @param {{ body?: unknown, headers?: Record<string, string>, noRedirect?: boolean }} [opts]
 * @returns {Promise<unknown>}
 */
export async function api(method, path, opts = {}) {
  /** @type {Record<string, string>} */
  const headers = { accept: "application/json", ...opts.headers };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken();
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      credentials: "same-origin",
    });
  } catch (e) {
    const message = `Cannot reach the appliance (${e instanceof Error ? e.message : e})`;
    throw new ApiFailure(0, { status: 0, code: "network", message });
  }
  const text = await res.text();
  let data = null;
  try {
    data = text === "" ? null : JSON.parse(text);
  } catch {
    data = null;
  }
  if (res.ok) return data;
  if (res.status === 401 && !opts.noRedirect) toLogin();
  const error = data?.error ?? {
    status: res.status,
    code: "http_error",
    message: `The appliance answered ${res.status} ${res.statusText}`,
  };
  throw new ApiFailure(res.status, error);
}

/**
 * Says `text` through the page's polite live region.
 * @param {string} text
 */
export function announce(text) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  // A fresh text node after a tick makes screen readers announce a repeated message too.
  setTimeout(() => region.textContent = text, 50);
}

/**
 * Keeps `text` to show on the next page (after a redirect).
 * @param {string} text
 */
export function setFlash(text) {
  try {
    sessionStorage.setItem("kg-flash", text);
  } catch { /* storage disabled: the message is lost, nothing else */ }
}

/**
 * Marks a button busy while `work` runs.
 * @template T
 * @param {HTMLButtonElement | null} button
 * @param {() => Promise<T>} work
 * @returns {Promise<T>}
 */
export async function busy(button, work) {
  if (button) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
  }
  try {
    return await work();
  } finally {
    if (button) {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }
}

/**
 * The error slot for an API field path, trying shorter paths
 * (`ports[0].ports.start` -> `ports.0.ports` -> `ports.0` -> `ports`).
 * @param {ParentNode} root
 * @param {string} field
 * @returns {HTMLElement | null}
 */
export function errorSlot(root, field) {
  const parts = field.replace(/\[(\d+)\]/g, ".$1").split(".");
  while (parts.length > 0) {
    const name = parts.join(".");
    const slot = root.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
    if (slot instanceof HTMLElement) return slot;
    parts.pop();
  }
  return null;
}

/**
 * The control an error slot belongs to (`x-error` -> `#x`).
 * @param {HTMLElement} slot
 * @returns {HTMLElement | null}
 */
function controlOf(slot) {
  return document.getElementById(slot.id.replace(/-error$/, ""));
}

/**
 * Shows `message` next to the field `field` of `root`; false when there is no such field.
 * @param {ParentNode} root
 * @param {string} field
 * @param {string} message
 * @returns {boolean}
 */
export function fieldError(root, field, message) {
  const slot = errorSlot(root, field);
  if (!slot) return false;
  slot.textContent = slot.hidden ? message : `${slot.textContent} ${message}`;
  slot.hidden = false;
  const control = controlOf(slot);
  control?.setAttribute("aria-invalid", "true");
  control?.closest(".field")?.classList.add("invalid");
  return true;
}

/**
 * Removes every field error and the form alert of `root`.
 * @param {ParentNode} root
 */
export function clearErrors(root) {
  root.querySelectorAll("[data-error-for]").forEach((el) => {
    if (!(el instanceof HTMLElement)) return;
    el.hidden = true;
    el.textContent = "";
    const control = controlOf(el);
    control?.removeAttribute("aria-invalid");
    control?.closest(".field")?.classList.remove("invalid");
  });
  root.querySelectorAll("[data-form-error]").forEach((el) => {
    if (el instanceof HTMLElement) {
      el.hidden = true;
      el.textContent = "";
    }
  });
}

/**
 * Shows `text` in the alert of `root` (its `[data-form-error]` element).
 * @param {ParentNode} root
 * @param {string} text
 */
export function formAlert(root, text) {
  const alert = root.querySelector("[data-form-error]");
  if (alert instanceof HTMLElement) {
    alert.textContent = text;
    alert.hidden = false;
  }
}

/**
 * Moves focus to the first field marked invalid in `root`.
 * @param {ParentNode} root
 * @returns {boolean} whether a field took focus
 */
export function focusFirstInvalid(root) {
  const first = root.querySelector('[aria-invalid="true"]');
  if (!(first instanceof HTMLElement)) return false;
  const target = first.matches("fieldset")
    ? first.querySelector("input:not([disabled]), select, textarea")
    : first;
  if (target instanceof HTMLElement) {
    target.focus();
    return true;
  }
  return false;
}

/**
 * Puts an API failure where it belongs: each named field's reason beside the
 * field, the rest in the form's alert; focus goes to the first bad field.
 * @param {ParentNode} root
 * @param {unknown} failure
 */
export function showFailure(root, failure) {
  if (!(failure instanceof ApiFailure)) {
    formAlert(root, `Unexpected failure: ${failure instanceof Error ? failure.message : failure}`);
    return;
  }
  const e = failure.error;
  const issues = e.issues && e.issues.length > 0
    ? e.issues
    : e.field
    ? [{ field: e.field, reason: e.message }]
    : [];
  let placed = 0;
  const loose = [];
  for (const issue of issues) {
    if (issue.field !== "" && fieldError(root, issue.field, issue.reason)) placed++;
    else loose.push(issue.reason);
  }
  if (placed === 0) formAlert(root, e.message);
  else if (loose.length > 0) formAlert(root, loose.join(" "));
  else {
    formAlert(
      root,
      placed === 1
        ? "Please correct the field marked below."
        : `Please correct the ${placed} fields marked below.`,
    );
  }
  if (!focusFirstInvalid(root)) {
    const alert = root.querySelector("[data-form-error]");
    if (alert instanceof HTMLElement) {
      alert.tabIndex = -1;
      alert.focus();
    }
  }
}

/**
 * Client-side problems found before sending: field path -> message.
 * @typedef {Map<string, string>} Problems
 */

/**
 * Shows client-side problems like API errors; true when there were any.
 * @param {ParentNode} root
 * @param {Problems} problems
 * @returns {boolean}
 */
export function showProblems(root, problems) {
  if (problems.size === 0) return false;
  for (const [field, message] of problems) {
    if (!fieldError(root, field, message)) formAlert(root, message);
  }
  formAlert(
    root,
    problems.size === 1
      ? "Please correct the field marked below."
      : `Please correct the ${problems.size} fields marked below.`,
  );
  focusFirstInvalid(root);
  return true;
}

/**
 * The value of the input `id`.
 * @param {string} id
 * @returns {string}
 */
export function valueOf(id) {
  const el = document.getElementById(id);
  return el instanceof HTMLInputElement || el instanceof HTMLSelectElement ? el.value : "";
}

/**
 * Whether the checkbox `id` is checked.
 * @param {string} id
 * @returns {boolean}
 */
export function checked(id) {
  const el = document.getElementById(id);
  return el instanceof HTMLInputElement && el.checked;
}

/**
 * The values of the checked boxes in the group `id`.
 * @param {string} id
 * @returns {string[]}
 */
export function checkedValues(id) {
  const group = document.getElementById(id);
  if (!group) return [];
  return Array.from(group.querySelectorAll('input[type="checkbox"]:checked'))
    .map((el) => /** @type {HTMLInputElement} */ (el).value);
}

/**
 * Reads a whole number from input `id` into `problems` when it is not one.
 * @param {string} id
 * @param {string} field
 * @param {Problems} problems
 * @returns {number}
 */
export function intOf(id, field, problems) {
  const text = valueOf(id).trim();
  if (!/^\d{1,9}$/.test(text)) {
    problems.set(field, text === "" ? "Enter a number" : `"${text}" is not a whole number`);
    return 0;
  }
  return Number(text);
}

/**
 * A table cell (or row header) built from a cell spec.
 * @param {{ label: string, text: string, cls?: string, title?: string }} spec
 * @param {boolean} [header] make it the row's `<th scope="row">`
 * @returns {HTMLTableCellElement}
 */
export function cell(spec, header = false) {
  const el = document.createElement(header ? "th" : "td");
  if (header) el.setAttribute("scope", "row");
  el.dataset.label = spec.label;
  if (spec.cls) el.className = spec.cls;
  if (spec.title) el.title = spec.title;
  el.textContent = spec.text;
  return el;
}

/**
 * A row saying the table is empty.
 * @param {number} span
 * @param {string} text
 * @returns {HTMLTableRowElement}
 */
export function emptyRow(span, text) {
  const tr = document.createElement("tr");
  tr.className = "empty";
  const td = document.createElement("td");
  td.colSpan = span;
  td.textContent = text;
  tr.append(td);
  return tr;
}

/**
 * Opens the API's event stream and reports its state in the pill `stateId`.
 * @param {string} stateId
 * @param {(type: string, event: Record<string, unknown>) => void} onEvent
 * @param {readonly string[]} types event types to listen to
 * @param {() => void} [onOpen] called whenever the stream (re)connects: catch up then
 * @returns {EventSource}
 */
export function liveEvents(stateId, onEvent, types, onOpen) {
  const pill = document.getElementById(stateId);
  /** @param {string} text @param {string} kind */
  const state = (text, kind) => {
    if (!pill) return;
    pill.textContent = text;
    pill.className = `pill ${kind}`;
  };
  const es = new EventSource("/api/v1/events/stream");
  es.onopen = () => {
    state("Live", "ok");
    onOpen?.();
  };
  es.onerror = () => {
    state(es.readyState === EventSource.CLOSED ? "Disconnected" : "Reconnecting…", "warn");
    // A closed stream is most often an ended session: check it, and sign in again if so.
    if (es.readyState === EventSource.CLOSED) {
      api("GET", "/api/v1/auth/me").catch(() => {});
    }
  };
  for (const type of types) {
    es.addEventListener(type, (m) => {
      try {
        onEvent(type, JSON.parse(/** @type {MessageEvent} */ (m).data));
      } catch { /* a malformed event is skipped */ }
    });
  }
  addEventListener("pagehide", () => es.close());
  return es;
}
