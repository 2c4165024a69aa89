/// <reference no-default-lib="true" />
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="esnext" />
/**
 * The knock page's script: binds `knock_core.ts` to the form of
 * `template.html`. `scripts/build_knock_page.ts` bundles it (with
 * `src/knock/sequence.ts` and `base32.ts`) into `index.html`.
 *
 * Knocks are WebSocket connection attempts closed after a short hold: the
 * browser sends one SYN and abandons the socket. An aborted `fetch` would
 * leave the connection attempt running in the browser's socket pool, and the
 * kernel would retransmit every SYN, out of sequence order, for minutes.
 *
 * A page cannot choose the address family of a connection to a name, nor
 * learn which one was used: the browser resolves it. Chromium (checked in the
 * lab, v6cli notes in docs/knock-protocol.md) asks for AAAA only when the
 * device has a global IPv6 route, tries the IPv6 address first, and after
 * 300 ms without an answer starts a second attempt over IPv4 to the same
 * port; a knock is never answered, so every attempt held past 300 ms (the
 * first knock on a name is held 1.5 s for the lookup) reaches both families.
 * The page shows the family for an address typed in, and says so for a name.
 */

import vectorFile from "../../src/knock/testdata/knock_vectors.json" with { type: "json" };
import {
  BLOCKED_PORTS,
  type FieldErrors,
  type HmacEngine,
  hmacEngines,
  type KnockForm,
  type KnockParams,
  type KnockRecord,
  planHolds,
  runKnocks,
  secondsLeft,
  secretError,
  selfTest,
  type SelfTestResult,
  sequenceAt,
  sequenceFor,
  serverAddress,
  throttleBoundMs,
  totpCode,
  urlHost,
  validateForm,
  type VectorCase,
} from "./knock_core.ts";

/** Form field keys and the ids of their inputs. */
const FIELD_IDS: Record<keyof KnockForm, string> = {
  profile: "profile",
  server: "server",
  firstPort: "first-port",
  secret: "secret",
  length: "length",
  delayMs: "delay-ms",
  thenPort: "then-port",
};
const FIELDS = Object.keys(FIELD_IDS) as (keyof KnockForm)[];
/** The localStorage key; written only while "Remember" is ticked. */
const STORE_KEY = "knockgate.knock.v1";
/** Chromium forgets WebSocket failures after two to four minutes. */
const THROTTLE_MEMORY_MS = 240_000;
/** Knocks must fit the appliance's sequence window (15 s by default). */
const MAX_PLAN_MS = 12_000;
/** Pause after the last knock for the appliance to apply the unlock. */
const SETTLE_MS = 300;
const PROBE_MS = 3000;

/** Start times of this page's WebSocket attempts, for the throttle estimate. */
const attempts: number[] = [];

function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`Cannot start the knock page: element #${id} is missing`);
  return el;
}

function input(key: keyof KnockForm): HTMLInputElement {
  return $(FIELD_IDS[key]) as HTMLInputElement;
}

function readForm(): KnockForm {
  const form = {} as KnockForm;
  for (const key of FIELDS) form[key] = input(key).value;
  return form;
}

function showErrors(errors: FieldErrors, only?: keyof KnockForm): void {
  for (const key of only ? [only] : FIELDS) {
    const box = $(`${FIELD_IDS[key]}-error`);
    const message = errors[key];
    box.textContent = message ?? "";
    box.hidden = !message;
    if (message) input(key).setAttribute("aria-invalid", "true");
    else input(key).removeAttribute("aria-invalid");
  }
}

// ---- Remembered profiles (localStorage, only when ticked) ----

/** A remembered profile: the form's text. */
type Stored = { last: string; profiles: Record<string, KnockForm> };

function loadStore(): Stored | null {
  try {
    const raw = localStorage.getItem(STORE_KEY);
    const doc = raw ? JSON.parse(raw) as Stored : null;
    return doc && typeof doc.profiles === "object" ? doc : null;
  } catch {
    return null;
  }
}

function writeStore(doc: Stored | null): void {
  try {
    if (doc && Object.keys(doc.profiles).length > 0) {
      localStorage.setItem(STORE_KEY, JSON.stringify(doc));
    } else localStorage.removeItem(STORE_KEY);
  } catch { /* storage disabled: nothing to keep */ }
}

function profileKey(form: KnockForm): string {
  return form.profile.trim() || `${urlHost(form.server.trim())}:${form.firstPort.trim()}`;
}

function remember(params: KnockParams): void {
  const form = readForm();
  const doc = loadStore() ?? { last: "", profiles: {} };
  const key = profileKey(form);
  doc.profiles[key] = { ...form, secret: params.secret };
  doc.last = key;
  writeStore(doc);
  refreshSaved();
}

function forget(): void {
  const doc = loadStore();
  const key = profileKey(readForm());
  if (doc) {
    delete doc.profiles[key];
    doc.last = Object.keys(doc.profiles)[0] ?? "";
    writeStore(doc);
  }
  ($("remember") as HTMLInputElement).checked = false;
  refreshSaved();
  say(`Profile "${key}" is no longer stored in this browser.`, "forgotten");
}

function fillForm(form: KnockForm): void {
  for (const key of FIELDS) input(key).value = form[key] ?? "";
  showErrors({});
  void updateCode();
}

function refreshSaved(): void {
  const doc = loadStore();
  const names = doc ? Object.keys(doc.profiles) : [];
  const select = $("saved") as HTMLSelectElement;
  select.replaceChildren(...names.map((n) => new Option(n, n, false, n === doc?.last)));
  $("saved-row").hidden = names.length === 0;
  ($("forget") as HTMLButtonElement).disabled = names.length === 0;
}

// ---- The current TOTP code ----

async function updateCode(): Promise<void> {
  const secret = input("secret").value;
  const code = $("totp");
  const left = $("totp-left");
  if (secret.trim() === "" || secretError(secret)) {
    code.textContent = "------";
    left.textContent = "enter a valid secret to see it";
    return;
  }
  const now = Date.now() / 1000;
  code.textContent = await totpCode(secret, now);
  left.textContent = `changes in ${secondsLeft(now)} s`;
}

// ---- Knocking ----

function say(text: string, state: string): void {
  const result = $("result");
  result.textContent = text;
  result.dataset.state = state;
}

function scheme(secure: string, plain: string): string {
  return location.protocol === "https:" ? secure : plain;
}

function recentFailures(now: number): number {
  while (attempts.length > 0 && now - attempts[0] > THROTTLE_MEMORY_MS) attempts.shift();
  return attempts.length;
}

/** Starts a WebSocket attempt to `host:port`; the browser sends the SYN. */
function openSocket(host: string, port: number): WebSocket {
  attempts.push(Date.now());
  return new WebSocket(`${scheme("wss", "ws")}://${urlHost(host)}:${port}/`);
}

function logKnock(r: KnockRecord, total: number, family: 4 | 6 | undefined): void {
  const li = document.createElement("li");
  const clock = new Date().toLocaleTimeString([], { hour12: false });
  const over = family ? ` over IPv${family}` : "";
  li.textContent = `Knock ${
    r.index + 1
  } of ${total}: port ${r.port}${over} at +${r.atMs} ms (${clock})`;
  li.dataset.port = String(r.port);
  $("knock-log").append(li);
}

/** Whether `port` answers: a WebSocket attempt first (abandoned cleanly), then HTTP. */
async function probe(host: string, port: number): Promise<"open" | "answered" | "closed"> {
  const wait = PROBE_MS + throttleBoundMs(recentFailures(Date.now()));
  const ws = openSocket(host, port);
  const first = await new Promise<"open" | "answered" | "closed">((resolve) => {
    const timer = setTimeout(() => resolve("closed"), wait);
    ws.onopen = () => (clearTimeout(timer), resolve("open"));
    ws.onerror = ws.onclose = () => (clearTimeout(timer), resolve("answered"));
  });
  ws.onopen = ws.onerror = ws.onclose = null;
  ws.close();
  if (first !== "answered") return first;
  try {
    const url = `${scheme("https", "http")}://${urlHost(host)}:${port}/`;
    await fetch(url, { mode: "no-cors", cache: "no-store", signal: AbortSignal.timeout(PROBE_MS) });
    return "open";
  } catch {
    return "answered";
  }
}

function planOrRefuse(params: KnockParams, count: number): number[] | null {
  const holds = planHolds(
    count,
    params.delayMs,
    recentFailures(Date.now()),
    serverAddress(params.server) === null,
  );
  const total = holds.reduce((a, b) => a + b, 0);
  if (total <= MAX_PLAN_MS) return holds;
  say(
    "This browser slows down repeated connection attempts from one page, which would stretch " +
      "the knock past the appliance's time window. Wait about 4 minutes, then knock again.",
    "throttled",
  );
  return null;
}

async function knock(params: KnockParams): Promise<void> {
  const ports = await sequenceFor(params, Date.now() / 1000);
  const holds = planOrRefuse(params, ports.length);
  if (!holds) return;
  $("knock-log").replaceChildren();
  const family = serverAddress(params.server)?.family;
  showFamily(params.server, family);
  say(`Knocking on ${params.server}…`, "knocking");
  const start = performance.now();
  await runKnocks(ports, holds, {
    connect: (port) => {
      const ws = openSocket(params.server, port);
      ws.onerror = null;
      return { close: () => ws.close() };
    },
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    now: () => performance.now(),
    onKnock: (r) => logKnock(r, ports.length, family),
  });
  const sent = `Sent ${ports.length} knocks to ${params.server} in ${
    Math.round(performance.now() - start)
  } ms.`;
  if (params.thenPort === null) return say(`${sent} You can now connect.`, "sent");
  say(`${sent} Trying port ${params.thenPort}…`, "probing");
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const outcome = await probe(params.server, params.thenPort);
  say(`${sent} ${outcomeText(params.thenPort, outcome)}`, outcome);
}

/** Says which address family the knocks take: known for an address, the browser's pick for a name. */
function showFamily(server: string, family: 4 | 6 | undefined): void {
  const box = $("family");
  box.hidden = false;
  box.dataset.family = family ? String(family) : "browser";
  box.textContent = family
    ? `Over IPv${family}, to ${server}.`
    : `Over the address family this browser picks for ${server}: IPv6 first where this ` +
      "device has IPv6 and the name an IPv6 address (see the notes below). Enter the " +
      "address itself to choose.";
}

function outcomeText(port: number, outcome: "open" | "answered" | "closed"): string {
  if (outcome === "open") return `Port ${port} is open.`;
  if (outcome === "answered") {
    return `Port ${port} answered, but not over HTTP (or it refused the connection).`;
  }
  return `Port ${port} is still closed: no answer within ${PROBE_MS / 1000} s. Check the ` +
    "secret, the first port and this device's clock, then knock again.";
}

async function onSubmit(event: Event): Promise<void> {
  event.preventDefault();
  const button = $("knock") as HTMLButtonElement;
  if (button.disabled) return;
  const v = validateForm(readForm());
  showErrors(v.ok ? {} : v.errors);
  if (!v.ok) {
    const first = FIELDS.find((k) => v.errors[k]);
    if (first) input(first).focus();
    return say("Correct the fields marked above.", "invalid");
  }
  if (($("remember") as HTMLInputElement).checked) remember(v.params);
  button.disabled = true;
  $("knock-panel").setAttribute("aria-busy", "true");
  try {
    await knock(v.params);
  } catch (e) {
    say(`The knock failed: ${(e as Error).message}`, "error");
  } finally {
    button.disabled = false;
    $("knock-panel").removeAttribute("aria-busy");
  }
}

// ---- Self-test and the page's script API ----

type VectorDoc = { cases: VectorCase[] } | VectorCase[];

function runSelfTest(doc: VectorDoc = vectorFile as VectorDoc): Promise<SelfTestResult> {
  return selfTest(Array.isArray(doc) ? doc : doc.cases);
}

/** How the self-test names the engines. */
const ENGINE_NAMES: Record<HmacEngine, string> = {
  webcrypto: "WebCrypto",
  noble: "the page's own HMAC, as this page is not a secure context",
};

async function onSelfTest(): Promise<void> {
  const out = $("selftest-result");
  out.textContent = "Running…";
  const r = await runSelfTest();
  const by = r.engines.map((e) => ENGINE_NAMES[e]).join(" and ");
  out.textContent = r.ok
    ? `All ${r.passed} protocol test vector checks reproduced in this browser (${by}).`
    : `${r.failed} of ${r.cases.length} test vector checks FAILED in this browser (${by}): ` +
      `do not use it.`;
  out.dataset.state = r.ok ? "ok" : "failed";
}

/** What the page exposes as `globalThis.knockgate` (used by the browser tests). */
const api = {
  protocol: "portknock/v1",
  blockedPorts: BLOCKED_PORTS,
  selfTest: runSelfTest,
  totpCode,
  sequenceAt,
  hmacEngines,
  validate: validateForm,
};

function bind(): void {
  Object.assign(globalThis, { knockgate: api });
  $("knock-form").addEventListener("submit", (e) => void onSubmit(e));
  $("forget").addEventListener("click", forget);
  $("selftest").addEventListener("click", () => void onSelfTest());
  $("saved").addEventListener("change", () => {
    const name = ($("saved") as HTMLSelectElement).value;
    const form = loadStore()?.profiles[name];
    if (form) fillForm(form);
  });
  $("show-secret").addEventListener("change", (e) => {
    input("secret").type = (e.target as HTMLInputElement).checked ? "text" : "password";
  });
  for (const key of FIELDS) {
    // Once a field shows an error, it is re-checked as the user corrects it.
    input(key).addEventListener("input", () => {
      if (input(key).getAttribute("aria-invalid") !== "true") return;
      const v = validateForm(readForm());
      showErrors(v.ok ? {} : v.errors, key);
    });
  }
  input("secret").addEventListener("input", () => void updateCode());
  $("blocked-ports").textContent = BLOCKED_PORTS.join(", ");
  const doc = loadStore();
  if (doc?.profiles[doc.last]) {
    fillForm(doc.profiles[doc.last]);
    ($("remember") as HTMLInputElement).checked = true;
  }
  refreshSaved();
  void updateCode();
  setInterval(() => void updateCode(), 1000);
}

bind();
