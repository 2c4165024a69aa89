/**
 * What went wrong with a form, in plain words, next to the field at fault.
 * The API answers a refused body with `{error: {message, field?, issues?}}`
 * (every zod issue with its dotted path) or, from the store's validator,
 * `problems: [{field, message, clash?}]`; all of them are read, each placed
 * on the form field with the longest matching path
 * (`ports.0.ports.start` -> `ports.0.ports` -> `ports.0` -> `ports`), and the
 * rest summarised in the form's alert. Internal paths in a message are
 * replaced by the field's label.
 */

/** One problem of a submitted form. */
export interface Problem {
  /** The API's dotted field path; "" for the whole form. */
  field: string;
  message: string;
}

/** What a form shows after a refused submission. */
export interface FormState {
  /** The posted values by field name: when present, controls show these. */
  values?: Map<string, string[]>;
  /** Messages by the field path of an error slot on the form. */
  errors: Map<string, string[]>;
  /** The text of the form's alert ("" for none). */
  alert: string;
}

/** A form as first shown: nothing posted, nothing wrong. */
export const FRESH_FORM: FormState = { errors: new Map(), alert: "" };

interface ProblemLike {
  field?: unknown;
  message?: unknown;
  reason?: unknown;
  clash?: unknown;
}

function asProblem(p: ProblemLike): Problem | null {
  const text = typeof p.message === "string"
    ? p.message
    : typeof p.reason === "string"
    ? p.reason
    : null;
  if (text === null) return null;
  const field = typeof p.field === "string" ? p.field : "";
  const clash = typeof p.clash === "string" && p.clash !== "" && !text.includes(p.clash)
    ? ` (clashes with ${p.clash})`
    : "";
  return { field, message: `${text}${clash}` };
}

/** Every problem an API error body names (`problems`, `issues`, or `field` + `message`). */
export function problemsOf(body: unknown): Problem[] {
  const b = (body ?? {}) as { error?: Record<string, unknown>; problems?: unknown };
  const error = b.error ?? {};
  for (const list of [error.problems, b.problems, error.issues]) {
    if (!Array.isArray(list) || list.length === 0) continue;
    const found = list.map((p) => asProblem(p as ProblemLike)).filter((p) => p !== null);
    if (found.length > 0) return found;
  }
  const message = typeof error.message === "string" ? error.message : "The request failed.";
  return [{ field: typeof error.field === "string" ? error.field : "", message }];
}

const RULES: [RegExp, (m: RegExpExecArray) => string][] = [
  [/^Invalid input: expected (?:number|int), received .*$/, () => "Enter a whole number"],
  [/^Invalid input: expected string, received .*$/, () => "Enter a text"],
  [/^Invalid input: expected boolean, received .*$/, () => "Choose yes or no"],
  [/^Too small: expected number to be >=?(-?\d+)$/, (m) => `Use ${m[1]} or more`],
  [/^Too big: expected number to be <=?(-?\d+)$/, (m) => `Use ${m[1]} or less`],
  [
    /^Too small: expected string to have >=?(\d+) characters?$/,
    (m) => `Use at least ${m[1]} character${m[1] === "1" ? "" : "s"}`,
  ],
  [
    /^Too big: expected string to have <=?(\d+) characters?$/,
    (m) => `Use at most ${m[1]} characters`,
  ],
  [/^Too big: expected array to have <=?(\d+) items?$/, (m) => `Choose at most ${m[1]}`],
  [
    /^Invalid option: expected one of (.*)$/,
    (m) => `Choose one of ${m[1].replaceAll('"', "").split("|").join(", ")}`,
  ],
  [/^Invalid input$/, () => "This value is not valid"],
  [
    /^WAN address "([^"]*)" is not "all" or an IPv4 or IPv6 address$/,
    (m) => `"${m[1]}" is not an IPv4 or IPv6 address; choose one of the uplink's addresses or All`,
  ],
];

/**
 * `message` in plain words: zod's wording replaced, the store's "Cannot save
 * X:" prefix dropped (the field says which), internal field paths named by
 * their labels.
 */
export function plainWords(message: string, labels: ReadonlyMap<string, string>): string {
  // The field path after "Invalid request body:" goes too: the message sits beside that field.
  let text = message.replace(/^Cannot save [^:]+: /, "")
    .replace(/^Invalid request body: (?:[A-Za-z][\w.[\]]*: )?/, "")
    .replace(/(\w)\[(\d+)\]/g, "$1.$2"); // the API's `collectors[1].host` is the form's `collectors.1.host`
  for (const [re, say] of RULES) {
    const m = re.exec(text);
    if (m) {
      text = say(m);
      break;
    }
  }
  // Longest paths first, so `knock.firstPort` is not half-replaced by `knock`.
  const paths = [...labels.keys()].filter((k) => k.includes(".")).sort((a, b) =>
    b.length - a.length
  );
  for (const path of paths) {
    text = text.replaceAll(path, `"${labels.get(path)}"`);
  }
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * The error slot for `field` among `slots`, trying ever shorter paths
 * (`ports[0].ports.start` -> `ports.0.ports` -> `ports.0` -> `ports`); null when none.
 * A path in the configuration's terms (`forwards[0].uplink`, `openPorts[2].wanAddress`)
 * is the rule form's field after its list.
 */
export function slotFor(field: string, slots: ReadonlyMap<string, string>): string | null {
  const parts = field.replace(/\[(\d+)\]/g, ".$1").split(".");
  while (parts.length > 0) {
    const name = parts.join(".");
    if (slots.has(name)) return name;
    parts.pop();
  }
  const inList = /^(?:forwards|openPorts)\[\d+\]\.(.+)$/.exec(field);
  return inList === null ? null : slotFor(inList[1], slots);
}

/**
 * Places `problems` on the form whose error slots (path -> label) are
 * `slots`; what no slot takes goes to the alert.
 */
export function placeProblems(
  problems: readonly Problem[],
  slots: ReadonlyMap<string, string>,
  values?: Map<string, string[]>,
): FormState {
  const errors = new Map<string, string[]>();
  const loose: string[] = [];
  for (const p of problems) {
    const text = plainWords(p.message, slots);
    const slot = p.field === "" ? null : slotFor(p.field, slots);
    if (slot === null) {
      if (!loose.includes(text)) loose.push(text);
      continue;
    }
    const list = errors.get(slot) ?? [];
    if (!list.includes(text)) list.push(text);
    errors.set(slot, list);
  }
  const n = errors.size;
  const summary = n === 0
    ? ""
    : n === 1
    ? "Please correct the field marked below."
    : `Please correct the ${n} fields marked below.`;
  return { values, errors, alert: [...loose, summary].filter((s) => s !== "").join(" ") };
}

/** The error slots of rendered form HTML: `data-error-for` path -> `data-label`. */
export function slotsOf(html: string): Map<string, string> {
  const slots = new Map<string, string>();
  const unescape = (s: string) =>
    s.replaceAll("&quot;", '"').replaceAll("&#39;", "'").replaceAll("&lt;", "<")
      .replaceAll("&gt;", ">").replaceAll("&amp;", "&");
  for (const m of html.matchAll(/<p [^>]*data-error-for="([^"]*)"[^>]*>/g)) {
    const label = /data-label="([^"]*)"/.exec(m[0])?.[1] ?? m[1];
    slots.set(unescape(m[1]), unescape(label));
  }
  return slots;
}

/** Form fields as posted (`application/x-www-form-urlencoded`), by name. */
export function valuesOf(params: URLSearchParams): Map<string, string[]> {
  const values = new Map<string, string[]>();
  for (const [k, v] of params) values.set(k, [...(values.get(k) ?? []), v]);
  return values;
}
