/**
 * `settings show` and `settings set KEY VALUE`. Keys are dotted paths of the
 * API's settings (`idleTimeoutSeconds`, `knock.penaltySeconds`, ...);
 * `syslog.collectors` takes `host[:port][/format]` entries, comma-separated,
 * or `none`. The network part comes from the config file and is read-only.
 */
import type { Settings } from "../api_types.ts";
import { clientFor, emit, type ShellContext } from "../context.ts";
import { formatTime } from "../format.ts";
import { UsageError } from "../io.ts";
import type { Root } from "../program.ts";
import { renderPairs } from "../tables.ts";
import { listArg } from "./args.ts";

/** Integer settings, by dotted key. */
const INT_KEYS = [
  "idleTimeoutSeconds",
  "knock.sequenceWindowSeconds",
  "knock.failureLimit",
  "knock.failureWindowSeconds",
  "knock.penaltySeconds",
  "limits.maxConnections",
  "limits.maxUnlocks",
  "limits.maxPendingKnocks",
] as const;
const COLLECTORS = "syslog.collectors";

/** Every key `settings set` takes. */
export const SETTING_KEYS: readonly string[] = [...INT_KEYS, COLLECTORS];

/** A syslog collector as the API takes it. */
interface Collector {
  host: string;
  port: number;
  format: "rfc5424" | "rfc3164";
}

/** `host[:port][/format]` entries, comma-separated, or `none`. */
export function parseCollectors(text: string): Collector[] {
  if (text.trim() === "none") return [];
  return listArg(text).map((e) => {
    const m = /^([^:/\s]+)(?::(\d{1,5}))?(?:\/(rfc5424|rfc3164))?$/.exec(e);
    if (m === null) {
      throw new UsageError(
        `Cannot parse syslog collector "${e}": expected host[:port][/rfc5424|rfc3164]`,
      );
    }
    return {
      host: m[1],
      port: Number(m[2] ?? 514),
      format: (m[3] ?? "rfc5424") as Collector["format"],
    };
  });
}

/** The PATCH body that sets `key` to `value`; throws a UsageError on a bad key or value. */
export function settingsPatch(key: string, value: string): Record<string, unknown> {
  if (key === COLLECTORS) return { syslog: { collectors: parseCollectors(value) } };
  if (!(INT_KEYS as readonly string[]).includes(key)) {
    throw new UsageError(`Cannot set "${key}": settable keys are ${SETTING_KEYS.join(", ")}`);
  }
  if (!/^-?\d+$/.test(value)) {
    throw new UsageError(`Cannot set ${key}: "${value}" is not an integer`);
  }
  const [a, b] = key.split(".");
  return b === undefined ? { [a]: Number(value) } : { [a]: { [b]: Number(value) } };
}

function collectorsText(s: Settings): string {
  const c = s.syslog.collectors;
  return c.length === 0 ? "none" : c.map((x) => `${x.host}:${x.port}/${x.format}`).join(", ");
}

/** Every setting as dotted key and value. */
export function settingsPairs(s: Settings): [string, string | number][] {
  const n = s.network;
  return [
    ["idleTimeoutSeconds", s.idleTimeoutSeconds],
    ...Object.entries(s.knock).map(([k, v]): [string, number] => [`knock.${k}`, v]),
    ...Object.entries(s.limits).map(([k, v]): [string, number] => [`limits.${k}`, v]),
    [COLLECTORS, collectorsText(s)],
    ["network.wanAddress (config file)", n.wanAddress],
    ["network.lanAddress (config file)", n.lanAddress],
    ["network.lanNetwork (config file)", n.lanNetwork],
    ["network.managementPort (config file)", n.managementPort],
    ["network.managementWanAccess (config file)", n.managementWanAccess],
    ["version", s.version],
    ["updatedAt", formatTime(s.updatedAt)],
  ];
}

/** Registers `settings show` and `settings set`. */
export function registerSettings(root: Root, ctx: ShellContext): void {
  const settings = root.command("settings").description("appliance settings");
  settings.command("show").description("show every setting").action(async (_o, cmd) => {
    const o = cmd.optsWithGlobals();
    const s = await (await clientFor(ctx, o)).get<Settings>("/settings");
    emit(ctx, o, s, () => renderPairs(settingsPairs(s)));
  });
  settings.command("set <key> <value>")
    .description(`change one setting; keys: ${SETTING_KEYS.join(", ")}`)
    .action(async (key, value, _o, cmd) => {
      const o = cmd.optsWithGlobals();
      const patch = settingsPatch(key, value);
      const api = await clientFor(ctx, o);
      const s = await api.request<Settings>("PATCH", "/settings", { body: patch });
      const now = settingsPairs(s).find(([k]) => k === key)?.[1];
      emit(ctx, o, s, () => `Set ${key} = ${now}.`);
    });
}
