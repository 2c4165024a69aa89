// @ts-check
/// <reference lib="dom" />
/** The sign-in form: checks the fields, signs in through the API, then goes on. */
import { api, busy, clearErrors, formAlert, showFailure, showProblems, valueOf } from "./api.js";

const form = /** @type {HTMLFormElement | null} */ (document.getElementById("login-form"));

/**
 * Problems the API would refuse anyway, found before sending.
 * @param {string} username
 * @param {string} password
 * @param {string} code
 */
function problems(username, password, code) {
  const p = new Map();
  if (username === "") p.set("username", "Enter your user name");
  if (password === "") p.set("password", "Enter your password");
  if (!/^\d{6}$/.test(code)) p.set("code", "Enter the 6 digits your authenticator shows");
  return p;
}

/** @param {SubmitEvent} e */
async function submit(e) {
  e.preventDefault();
  if (!form) return;
  clearErrors(form);
  const username = valueOf("login-username").trim();
  const password = valueOf("login-password");
  const code = valueOf("login-code").replace(/\s+/g, "");
  if (showProblems(form, problems(username, password, code))) return;
  const button = form.querySelector('button[type="submit"]');
  try {
    await busy(/** @type {HTMLButtonElement} */ (button), () =>
      api("POST", "/api/v1/auth/login", {
        body: { username, password, code },
        noRedirect: true,
      }));
    location.assign(form.dataset.next || "/");
  } catch (err) {
    showFailure(form, err);
    const code = document.getElementById("login-code");
    if (code instanceof HTMLInputElement && !form.querySelector('[aria-invalid="true"]')) {
      // A refused sign-in: the code is spent or wrong either way; ask for the next one.
      code.value = "";
      formAlert(form, /** @type {Error} */ (err).message + " Enter a fresh code.");
      code.focus();
    }
  }
}

form?.addEventListener("submit", submit);
document.getElementById("login-username")?.focus();
