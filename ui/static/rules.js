// @ts-check
/// <reference lib="dom" />
/**
 * Rules: delete from the list; the port-forward and open-ports forms, saved
 * with POST (new) or PUT (edit, with the version read as If-Match). Port
 * ranges are parsed here; everything else the API checks, naming the field.
 */
import {
  announce,
  api,
  busy,
  checked,
  checkedValues,
  clearErrors,
  setFlash,
  showFailure,
  showProblems,
  valueOf,
} from "./api.js";
import { parsePortList, parsePortRange } from "./format.js";

/**
 * @param {string} kind `forwards` or `open-ports`
 * @param {string} name
 */
function ruleUrl(kind, name) {
  return `/api/v1/rules/${kind}/${encodeURIComponent(name)}`;
}

/** @param {HTMLButtonElement} button */
async function deleteRule(button) {
  const name = button.dataset.deleteRule ?? "";
  const kind = button.dataset.kind ?? "forwards";
  const alert = document.getElementById("rules-alert");
  if (!confirm(`Delete rule "${name}"? Connections it admitted are not cut.`)) return;
  try {
    await busy(button, () => api("DELETE", ruleUrl(kind, name)));
  } catch (e) {
    if (alert) {
      alert.textContent = `Cannot delete "${name}": ${e instanceof Error ? e.message : e}`;
      alert.hidden = false;
    }
    return;
  }
  const table = button.closest("table");
  button.closest("tr")?.remove();
  if (table && !table.querySelector("tbody tr")) location.reload();
  announce(`Rule ${name} deleted`);
  const h1 = /** @type {HTMLElement | null} */ (document.querySelector("h1"));
  h1?.setAttribute("tabindex", "-1");
  h1?.focus();
}

/**
 * The request body of the form and the problems found in it.
 * @param {string} kind
 */
function readRuleForm(kind) {
  /** @type {Map<string, string>} */
  const problems = new Map();
  /** @type {Record<string, unknown>} */
  const body = {
    name: valueOf("rule-name").trim(),
    enabled: checked("rule-enabled"),
    privateAddress: valueOf("rule-address").trim(),
    enforceKnock: checked("rule-enforce"),
    users: checkedValues("rule-users"),
  };
  if (body.name === "") problems.set("name", "Enter a name");
  if (kind === "forwards") {
    body.protocol = valueOf("rule-protocol");
    const pub = parsePortRange(valueOf("rule-public"));
    if (typeof pub === "string") problems.set("publicPorts", pub);
    else body.publicPorts = pub;
    const privText = valueOf("rule-private").trim();
    if (privText !== "") {
      const priv = parsePortRange(privText);
      if (typeof priv === "string") problems.set("privatePorts", priv);
      else body.privatePorts = priv;
    }
  } else {
    const ports = parsePortList(valueOf("rule-ports"));
    if (typeof ports === "string") problems.set("ports", ports);
    else body.ports = ports;
  }
  return { body, problems };
}

/** @param {SubmitEvent} e */
async function saveRule(e) {
  e.preventDefault();
  const form = /** @type {HTMLFormElement} */ (e.currentTarget);
  const kind = form.dataset.kind ?? "forwards";
  const original = form.dataset.name;
  clearErrors(form);
  const { body, problems } = readRuleForm(kind);
  if (showProblems(form, problems)) return;
  const button = /** @type {HTMLButtonElement} */ (form.querySelector('button[type="submit"]'));
  try {
    await busy(
      button,
      () =>
        original === undefined
          ? api("POST", `/api/v1/rules/${kind}`, { body })
          : api("PUT", ruleUrl(kind, original), {
            body,
            headers: { "If-Match": `"${form.dataset.version}"` },
          }),
    );
  } catch (err) {
    showFailure(form, err);
    return;
  }
  setFlash(`Rule ${body.name} saved.`);
  location.assign("/rules");
}

/** The user choice only matters while knocking is enforced. */
function syncUsers() {
  const on = checked("rule-enforce");
  document.querySelectorAll('#rule-users input[type="checkbox"]').forEach((el) => {
    /** @type {HTMLInputElement} */ (el).disabled = !on;
  });
}

document.addEventListener("click", (e) => {
  const b = e.target instanceof Element ? e.target.closest("button[data-delete-rule]") : null;
  if (b instanceof HTMLButtonElement) deleteRule(b);
});
const ruleForm = document.getElementById("rule-form");
if (ruleForm) {
  ruleForm.addEventListener("submit", saveRule);
  document.getElementById("rule-enforce")?.addEventListener("change", syncUsers);
  syncUsers();
}
