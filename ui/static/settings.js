// @ts-check
/// <reference lib="dom" />
/**
 * Settings: syslog collector rows (add, remove, renumbered so each field's
 * id matches the API's `syslog.collectors.N.x` path) and saving with PATCH
 * and the version read (If-Match).
 */
import {
  announce,
  api,
  busy,
  clearErrors,
  intOf,
  showFailure,
  showProblems,
  valueOf,
} from "./api.js";

const MAX_COLLECTORS = 8;
const form = /** @type {HTMLFormElement | null} */ (document.getElementById("settings-form"));
const list = document.getElementById("collectors");

/** Gives every collector row the ids and field paths of its position. */
function renumber() {
  if (!list) return;
  list.querySelectorAll("li.collector").forEach((li, i) => {
    const old = /** @type {HTMLElement} */ (li).dataset.index ?? "";
    /** @param {string} v */
    const fix = (v) =>
      v.replace(`collector-${old}-`, `collector-${i}-`)
        .replace(`syslog.collectors.${old}.`, `syslog.collectors.${i}.`);
    /** @type {HTMLElement} */ (li).dataset.index = String(i);
    li.querySelectorAll("[id], [for], [data-field], [data-error-for], [aria-describedby]")
      .forEach((el) => {
        for (const attr of ["id", "for", "data-field", "data-error-for", "aria-describedby"]) {
          const v = el.getAttribute(attr);
          if (v !== null) el.setAttribute(attr, fix(v));
        }
      });
  });
  const count = list.querySelectorAll("li.collector").length;
  const empty = document.getElementById("collectors-empty");
  if (empty) empty.hidden = count > 0;
  const add = document.getElementById("add-collector");
  if (add instanceof HTMLButtonElement) add.disabled = count >= MAX_COLLECTORS;
}

function addCollector() {
  const template = document.getElementById("collector-template");
  if (!(template instanceof HTMLTemplateElement) || !list) return;
  const fragment = /** @type {DocumentFragment} */ (template.content.cloneNode(true));
  const li = fragment.querySelector("li");
  if (!li) return;
  list.append(li);
  renumber();
  li.querySelector("input")?.focus();
  announce("Collector added");
}

/** @param {HTMLElement} button */
function removeCollector(button) {
  button.closest("li")?.remove();
  renumber();
  document.getElementById("add-collector")?.focus();
  announce("Collector removed");
}

/** The PATCH body and the problems found in the form. */
function readSettings() {
  /** @type {Map<string, string>} */
  const problems = new Map();
  /** @param {string} id @param {string} field */
  const int = (id, field) => intOf(id, field, problems);
  const collectors = Array.from(list?.querySelectorAll("li.collector") ?? []).map((_, i) => ({
    host: valueOf(`collector-${i}-host`).trim(),
    port: int(`collector-${i}-port`, `syslog.collectors.${i}.port`),
    format: valueOf(`collector-${i}-format`),
  }));
  collectors.forEach((c, i) => {
    if (c.host === "") problems.set(`syslog.collectors.${i}.host`, "Enter a host name or address");
  });
  const body = {
    idleTimeoutSeconds: int("set-idle", "idleTimeoutSeconds"),
    knock: {
      sequenceWindowSeconds: int("set-window", "knock.sequenceWindowSeconds"),
      failureLimit: int("set-failures", "knock.failureLimit"),
      failureWindowSeconds: int("set-failure-window", "knock.failureWindowSeconds"),
      penaltySeconds: int("set-penalty", "knock.penaltySeconds"),
    },
    limits: {
      maxConnections: int("set-max-conn", "limits.maxConnections"),
      maxUnlocks: int("set-max-unlocks", "limits.maxUnlocks"),
      maxPendingKnocks: int("set-max-pending", "limits.maxPendingKnocks"),
    },
    syslog: { collectors },
  };
  return { body, problems };
}

/** @param {SubmitEvent} e */
async function save(e) {
  e.preventDefault();
  if (!form) return;
  clearErrors(form);
  const ok = document.getElementById("settings-ok");
  if (ok) ok.hidden = true;
  const { body, problems } = readSettings();
  if (showProblems(form, problems)) return;
  try {
    const saved = /** @type {{ version: number }} */ (
      await busy(
        form.querySelector('button[type="submit"]'),
        () =>
          api("PATCH", "/api/v1/settings", {
            body,
            headers: { "If-Match": `"${form.dataset.version}"` },
          }),
      )
    );
    form.dataset.version = String(saved.version);
    if (ok) {
      ok.textContent = "Settings saved. They apply to new knocks and unlocks now.";
      ok.hidden = false;
      ok.focus();
    }
  } catch (err) {
    showFailure(form, err);
  }
}

form?.addEventListener("submit", save);
document.getElementById("add-collector")?.addEventListener("click", addCollector);
list?.addEventListener("click", (e) => {
  const b = e.target instanceof Element ? e.target.closest("[data-remove-collector]") : null;
  if (b instanceof HTMLElement) removeCollector(b);
});
renumber();
