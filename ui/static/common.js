// @ts-check
/// <reference lib="dom" />
/**
 * Loaded on every page: sign out, copy buttons, and the flash message a
 * previous page left for this one.
 */
import { announce, api } from "./api.js";

/** Shows the message the previous page stored before redirecting here. */
function showFlash() {
  let text = null;
  try {
    text = sessionStorage.getItem("kg-flash");
    sessionStorage.removeItem("kg-flash");
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

/** Ends the session and goes to the sign-in page. */
async function signOut() {
  try {
    await api("POST", "/api/v1/auth/logout", { noRedirect: true });
  } catch { /* the session is gone either way */ }
  location.assign("/login");
}

/**
 * Copies the value of the input a `data-copy` button names.
 * @param {HTMLElement} button
 */
async function copyFrom(button) {
  const input = document.getElementById(button.dataset.copy ?? "");
  if (!(input instanceof HTMLInputElement)) return;
  try {
    await navigator.clipboard.writeText(input.value);
    announce("Copied");
  } catch {
    // No clipboard access (plain HTTP): select the text for the user to copy.
    input.focus();
    input.select();
    announce("Selected; press Ctrl+C to copy");
  }
}

document.getElementById("sign-out")?.addEventListener("click", signOut);
document.addEventListener("click", (e) => {
  const target = e.target instanceof Element ? e.target.closest("[data-copy]") : null;
  if (target instanceof HTMLElement) copyFrom(target);
});
showFlash();
