// @ts-check
/// <reference lib="dom" />
/**
 * Users: delete from the list; the add/edit form; and the two-step TOTP
 * enrolment shared by "Add user" and "New secret": the API returns the
 * secret (QR code, secret, otpauth URI), and the user is active only after a
 * code from it is verified.
 */
import {
  announce,
  api,
  busy,
  checked,
  checkedValues,
  clearErrors,
  intOf,
  setFlash,
  showFailure,
  showProblems,
  valueOf,
} from "./api.js";

/**
 * @typedef {{ secret: string, otpauthUri: string, qrSvg: string }} Enrollment
 * @typedef {{ name: string, version: number, mfa: { enrolled: boolean } }} UserView
 */

/** @param {string} name */
function userUrl(name) {
  return `/api/v1/users/${encodeURIComponent(name)}`;
}

// --- The list -------------------------------------------------------------

/** @param {HTMLButtonElement} button */
async function deleteUser(button) {
  const name = button.dataset.deleteUser ?? "";
  const alert = document.getElementById("users-alert");
  if (!confirm(`Delete user "${name}"? Their sessions end and their unlocks are revoked.`)) return;
  try {
    await busy(button, () => api("DELETE", userUrl(name)));
  } catch (e) {
    if (alert) {
      alert.textContent = `Cannot delete "${name}": ${e instanceof Error ? e.message : e}`;
      alert.hidden = false;
      alert.tabIndex = -1;
      alert.focus();
    }
    return;
  }
  button.closest("tr")?.remove();
  if (alert) alert.hidden = true;
  announce(`User ${name} deleted`);
  document.querySelector("h1")?.setAttribute("tabindex", "-1");
  /** @type {HTMLElement | null} */ (document.querySelector("h1"))?.focus();
}

// --- The enrolment step -----------------------------------------------------

/**
 * Inserts the API's SVG QR code (parsed as SVG: nothing else can come in with it).
 * @param {HTMLElement} box
 * @param {string} svgText
 */
function showQr(box, svgText) {
  const doc = new DOMParser().parseFromString(svgText, "image/svg+xml");
  const svg = doc.documentElement;
  box.replaceChildren();
  if (svg.nodeName.toLowerCase() !== "svg") return;
  svg.querySelectorAll("script, foreignObject").forEach((n) => n.remove());
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  box.append(document.importNode(svg, true));
}

/**
 * Shows the secret to enrol for `name` and moves focus there.
 * @param {string} name
 * @param {Enrollment} enrollment
 */
function showEnrollment(name, enrollment) {
  const panel = document.getElementById("enroll");
  if (!panel) return;
  panel.dataset.user = name;
  panel.querySelectorAll("[data-enroll-user]").forEach((el) => el.textContent = name);
  const qr = document.getElementById("enroll-qr");
  if (qr) showQr(qr, enrollment.qrSvg);
  const secret = document.getElementById("enroll-secret");
  if (secret instanceof HTMLInputElement) secret.value = enrollment.secret;
  const uri = document.getElementById("enroll-uri");
  if (uri instanceof HTMLInputElement) uri.value = enrollment.otpauthUri;
  const verify = document.getElementById("verify-form");
  if (verify) verify.hidden = false;
  const ok = document.getElementById("verify-ok");
  if (ok) ok.hidden = true;
  panel.hidden = false;
  document.getElementById("enroll-h")?.focus();
  announce(`Secret created for ${name}. Scan the QR code, then enter a code to verify.`);
}

/** @param {SubmitEvent} e */
async function verify(e) {
  e.preventDefault();
  const form = /** @type {HTMLFormElement} */ (e.currentTarget);
  const panel = document.getElementById("enroll");
  const name = panel?.dataset.user ?? "";
  clearErrors(form);
  const code = valueOf("enroll-code").replace(/\s+/g, "");
  if (
    showProblems(
      form,
      new Map(/^\d{6}$/.test(code) ? [] : [["code", "Enter the 6 digits the authenticator shows"]]),
    )
  ) {
    return;
  }
  try {
    await busy(
      form.querySelector("button"),
      () => api("POST", `${userUrl(name)}/mfa/verify`, { body: { code } }),
    );
  } catch (err) {
    showFailure(form, err);
    return;
  }
  form.hidden = true;
  const ok = document.getElementById("verify-ok");
  if (!ok) return;
  const text = ok.querySelector("[data-verify-text]");
  if (text) text.textContent = `User ${name} is active with this secret.`;
  ok.hidden = false;
  ok.focus();
  document.getElementById("rotate-btn")?.setAttribute("hidden", "");
}

// --- The add/edit form ------------------------------------------------------

/** Disables the knock fields while knocking is off, and single rules while "All rules" is on. */
function syncDisabled() {
  const knockOn = checked("knock-enabled");
  for (const id of ["knock-first-port", "knock-length", "knock-transport"]) {
    const el = document.getElementById(id);
    if (el instanceof HTMLInputElement || el instanceof HTMLSelectElement) el.disabled = !knockOn;
  }
  const group = document.getElementById("user-rules");
  const all = group?.querySelector('input[value="*"]');
  const allOn = all instanceof HTMLInputElement && all.checked;
  group?.querySelectorAll('input[type="checkbox"]').forEach((el) => {
    if (el !== all) /** @type {HTMLInputElement} */ (el).disabled = allOn;
  });
}

/**
 * The request body of the form, and the problems found in it.
 * @param {boolean} editing
 */
function readUserForm(editing) {
  /** @type {Map<string, string>} */
  const problems = new Map();
  /** @type {Record<string, unknown>} */
  const body = {};
  if (!editing) {
    body.name = valueOf("user-name").trim();
    if (body.name === "") problems.set("name", "Enter a user name");
  }
  const password = valueOf("user-password");
  if (!editing || password !== "") {
    if (password.length < 8) problems.set("password", "Use at least 8 characters");
    body.password = password;
  }
  body.role = valueOf("user-role");
  const enabled = checked("knock-enabled");
  /** @type {Record<string, unknown>} */
  const knock = {
    enabled,
    length: Number(valueOf("knock-length")),
    transport: valueOf("knock-transport"),
  };
  if (enabled || valueOf("knock-first-port").trim() !== "") {
    knock.firstPort = intOf("knock-first-port", "knock.firstPort", problems);
    if (enabled && problems.has("knock.firstPort")) {
      problems.set("knock.firstPort", "Enter the first knock port (1-65535)");
    }
  }
  body.knock = knock;
  const rules = checkedValues("user-rules");
  body.allowedRules = rules.includes("*") ? ["*"] : rules;
  return { body, problems };
}

/** @param {SubmitEvent} e */
async function saveUser(e) {
  e.preventDefault();
  const form = /** @type {HTMLFormElement} */ (e.currentTarget);
  const editing = form.dataset.mode === "edit";
  clearErrors(form);
  const { body, problems } = readUserForm(editing);
  if (showProblems(form, problems)) return;
  const button = form.querySelector('button[type="submit"]');
  try {
    if (editing) {
      const name = form.dataset.user ?? "";
      await busy(/** @type {HTMLButtonElement} */ (button), () =>
        api("PATCH", userUrl(name), {
          body,
          headers: { "If-Match": `"${form.dataset.version}"` },
        }));
      setFlash(`User ${name} saved.`);
      location.assign("/users");
      return;
    }
    const r = /** @type {{ user: UserView, enrollment: Enrollment }} */ (
      await busy(
        /** @type {HTMLButtonElement} */ (button),
        () => api("POST", "/api/v1/users", { body }),
      )
    );
    // The user exists now: the form's job is done, the enrolment follows.
    form.hidden = true;
    showEnrollment(r.user.name, r.enrollment);
  } catch (err) {
    showFailure(form, err);
  }
}

// --- Secret rotation ----------------------------------------------------------

/** @param {HTMLButtonElement} button */
async function rotate(button) {
  const name = button.dataset.user ?? "";
  const alert = document.getElementById("rotate-alert");
  try {
    const r = /** @type {{ enrollment: Enrollment }} */ (
      await busy(button, () => api("POST", `${userUrl(name)}/mfa/rotate`))
    );
    if (alert) alert.hidden = true;
    button.textContent = "Generate another secret";
    showEnrollment(name, r.enrollment);
  } catch (err) {
    if (alert) {
      alert.textContent = err instanceof Error ? err.message : String(err);
      alert.hidden = false;
    }
  }
}

document.getElementById("users")?.addEventListener("click", (e) => {
  const b = e.target instanceof Element ? e.target.closest("button[data-delete-user]") : null;
  if (b instanceof HTMLButtonElement) deleteUser(b);
});
const userForm = document.getElementById("user-form");
if (userForm) {
  userForm.addEventListener("submit", saveUser);
  userForm.addEventListener("change", syncDisabled);
  syncDisabled();
}
document.getElementById("verify-form")?.addEventListener("submit", verify);
const rotateButton = document.getElementById("rotate-btn");
if (rotateButton instanceof HTMLButtonElement) {
  rotateButton.addEventListener("click", () => rotate(rotateButton));
}
