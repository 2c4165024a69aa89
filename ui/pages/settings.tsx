/**
 * Settings: unlock idle timeout, knock tunables, table limits and syslog
 * collectors (administrators change them; operators read them), and the
 * network layout from the configuration file, read only. The form posts to
 * `/settings`: Save sends it with the version read (If-Match), so a
 * concurrent change is refused; Add and Remove answer with the form again,
 * one collector more or less, nothing saved.
 */
import { type FC, useContext } from "hono/jsx";
import {
  describedBy,
  Facts,
  FieldError,
  FormAlert,
  FormContext,
  HiddenField,
  Notice,
  TextField,
} from "../components.tsx";
import type { Settings } from "../_types.ts";

/** At most this many syslog collectors. */
export const MAX_COLLECTORS = 8;

type Collector = Settings["syslog"]["collectors"][number];

/** One syslog collector row; `i` is its index in the list the API sees. */
export const CollectorRow: FC<
  { i: number; c?: Collector; disabled: boolean; focus?: string }
> = (p) => {
  const state = useContext(FormContext);
  const base = `syslog.collectors.${p.i}`;
  const id = (f: string) => `collector-${p.i}-${f}`;
  const value = (f: string, fallback: string) => state.values?.get(`${base}.${f}`)?.[0] ?? fallback;
  const bad = (f: string) => state.errors.has(`${base}.${f}`);
  const cls = (f: string, extra = "") => ["field", extra, bad(f) ? "invalid" : ""].join(" ").trim();
  const format = value("format", p.c?.format ?? "rfc5424");
  const n = p.i + 1;
  return (
    <li class="collector" data-index={String(p.i)}>
      <div class={cls("host")} data-field={`${base}.host`}>
        <label for={id("host")}>Host</label>
        <input
          id={id("host")}
          name={`${base}.host`}
          value={value("host", p.c?.host ?? "")}
          disabled={p.disabled}
          aria-describedby={describedBy(id("host"))}
          aria-invalid={bad("host") ? "true" : undefined}
          data-kg-focus={p.focus === id("host") ? "" : undefined}
        />
        <FieldError id={id("host")} field={`${base}.host`} label={`Collector ${n} host`} />
      </div>
      <div class={cls("port", "port")} data-field={`${base}.port`}>
        <label for={id("port")}>Port</label>
        <input
          id={id("port")}
          name={`${base}.port`}
          inputmode="numeric"
          value={value("port", String(p.c?.port ?? 514))}
          disabled={p.disabled}
          aria-describedby={describedBy(id("port"))}
          aria-invalid={bad("port") ? "true" : undefined}
        />
        <FieldError id={id("port")} field={`${base}.port`} label={`Collector ${n} port`} />
      </div>
      <div class={cls("format")} data-field={`${base}.format`}>
        <label for={id("format")}>Format</label>
        <select
          id={id("format")}
          name={`${base}.format`}
          disabled={p.disabled}
          aria-describedby={describedBy(id("format"))}
          aria-invalid={bad("format") ? "true" : undefined}
        >
          <option value="rfc5424" selected={format === "rfc5424"}>RFC 5424</option>
          <option value="rfc3164" selected={format === "rfc3164"}>RFC 3164 (BSD)</option>
        </select>
        <FieldError id={id("format")} field={`${base}.format`} label={`Collector ${n} format`} />
      </div>
      {!p.disabled && (
        <button
          type="submit"
          class="btn small secondary remove"
          name="op"
          value={`remove-${p.i}`}
          data-remove-collector
        >
          Remove <span class="visually-hidden">collector {n}</span>
        </button>
      )}
    </li>
  );
};

const NumberField: FC<
  { id: string; field: string; label: string; hint: string; value: number; disabled: boolean }
> = (p) => (
  <TextField
    id={p.id}
    field={p.field}
    label={p.label}
    hint={p.hint}
    value={p.value}
    inputmode="numeric"
    disabled={p.disabled}
  />
);

/** Props of the settings form. */
export interface SettingsFormProps {
  s: Settings;
  canEdit: boolean;
  /** How many collector rows to show (after Add/Remove); default the saved ones. */
  collectors?: number;
  /** The confirmation after a save. */
  saved?: string;
  /** Focus this element id after Add/Remove. */
  focus?: string;
}

/** The settings form (a fragment: Save, Add and Remove answer with it). */
export const SettingsForm: FC<SettingsFormProps> = ({ s, canEdit, collectors, saved, focus }) => {
  const ro = !canEdit;
  const count = collectors ?? s.syslog.collectors.length;
  const rows = Array.from({ length: count }, (_, i) => i);
  return (
    <form
      id="settings-form"
      class="form"
      novalidate
      method="post"
      action="/settings"
      data-kg-form
    >
      {canEdit && (
        // The first submit button is the one Enter presses: Save, not Remove.
        <button type="submit" class="visually-hidden" tabindex={-1} aria-hidden="true">
          Save
        </button>
      )}
      <HiddenField name="version" value={String(s.version)} />
      <FormAlert id="settings-alert" />
      <div
        class="alert ok"
        id="settings-ok"
        role="status"
        tabindex={-1}
        hidden={!saved}
        data-kg-focus={saved ? "" : undefined}
      >
        {saved}
      </div>
      <fieldset class="card">
        <legend>Unlocks</legend>
        <NumberField
          id="set-idle"
          field="idleTimeoutSeconds"
          label="Idle timeout (seconds)"
          hint="An unlock ends after this long with no packet and no new connection from the IP (10 to 604800; the router uses 3600)."
          value={s.idleTimeoutSeconds}
          disabled={ro}
        />
      </fieldset>
      <fieldset class="card">
        <legend>Knock verification</legend>
        <div class="row">
          <NumberField
            id="set-window"
            field="knock.sequenceWindowSeconds"
            label="Sequence window (seconds)"
            hint="A sequence must complete within this time from its first port (1 to 300)."
            value={s.knock.sequenceWindowSeconds}
            disabled={ro}
          />
          <NumberField
            id="set-failures"
            field="knock.failureLimit"
            label="Failure limit"
            hint="Failed sequences from one IP before its knocks are ignored (1 to 1000)."
            value={s.knock.failureLimit}
            disabled={ro}
          />
        </div>
        <div class="row">
          <NumberField
            id="set-failure-window"
            field="knock.failureWindowSeconds"
            label="Failure window (seconds)"
            hint="Failures count within this time (1 to 86400)."
            value={s.knock.failureWindowSeconds}
            disabled={ro}
          />
          <NumberField
            id="set-penalty"
            field="knock.penaltySeconds"
            label="Penalty (seconds)"
            hint="How long an IP's knocks are ignored after too many failures (0 to 86400)."
            value={s.knock.penaltySeconds}
            disabled={ro}
          />
        </div>
      </fieldset>
      <fieldset class="card">
        <legend>Limits</legend>
        <div class="row">
          <NumberField
            id="set-max-conn"
            field="limits.maxConnections"
            label="Tracked connections"
            hint="16 to 4194304"
            value={s.limits.maxConnections}
            disabled={ro}
          />
          <NumberField
            id="set-max-unlocks"
            field="limits.maxUnlocks"
            label="Unlocked IPs"
            hint="1 to 1048576"
            value={s.limits.maxUnlocks}
            disabled={ro}
          />
          <NumberField
            id="set-max-pending"
            field="limits.maxPendingKnocks"
            label="Knocks in progress"
            hint="1 to 1048576"
            value={s.limits.maxPendingKnocks}
            disabled={ro}
          />
        </div>
      </fieldset>
      <fieldset class="card" data-field="syslog.collectors">
        <legend>Syslog collectors</legend>
        <p class="hint" id="collectors-hint">
          Events are sent over UDP to up to 8 collectors, e.g. the unlock line "[Port Unlock] P:6
          203.0.113.10:42829-&gt;198.51.100.1:52201 #192.0.2.12:8080".
        </p>
        <ul class="collectors" id="collectors" aria-describedby="collectors-hint">
          {rows.map((i) => (
            <CollectorRow
              key={i}
              i={i}
              c={s.syslog.collectors[i]}
              disabled={ro}
              focus={focus}
            />
          ))}
        </ul>
        <p class="muted" id="collectors-empty" hidden={count > 0}>
          No collectors: events go to the appliance log only.
        </p>
        <FieldError id="collectors" field="syslog.collectors" label="Syslog collectors" />
        {canEdit && (
          <button
            type="submit"
            class="btn small secondary"
            id="add-collector"
            name="op"
            value="add"
            disabled={count >= MAX_COLLECTORS}
            data-kg-focus={focus === "add-collector" ? "" : undefined}
          >
            Add collector
          </button>
        )}
      </fieldset>
      {canEdit && (
        <div class="actions">
          <button type="submit" class="btn primary" name="op" value="save">
            Save settings
          </button>
        </div>
      )}
      {focus && focus !== "add-collector" && <span hidden data-kg-focus-id={focus}></span>}
    </form>
  );
};

/** The settings form and the network facts. */
export const SettingsPage: FC<{ s: Settings; canEdit: boolean }> = ({ s, canEdit }) => {
  return (
    <>
      {!canEdit && <Notice kind="info">Only administrators can change settings.</Notice>}
      <SettingsForm s={s} canEdit={canEdit} />
      <section class="card" aria-labelledby="net-h">
        <h2 id="net-h">Network</h2>
        <p class="hint">From the configuration file; change them there and restart.</p>
        <Facts
          id="network"
          items={[
            ["Primary WAN address", s.network.wanAddress],
            ...s.network.uplinks.map((u): [string, string] => [
              `Uplink ${u.name}`,
              `${u.interface}: ${[...u.addresses, ...(u.addresses6 ?? [])].join(", ")}${
                u.gateway === null ? ", on-link" : ` via ${u.gateway}`
              }${u.gateway6 ? `, IPv6 via ${u.gateway6}` : ""}`,
            ]),
            ["LAN address", s.network.lanAddress],
            ["LAN network", s.network.lanNetwork],
            ...ipv6Facts(s.network.ipv6),
            ["Management port", String(s.network.managementPort)],
            [
              "Management from the WAN",
              s.network.managementWanAccess === "knock" ? "After a knock" : "Never",
            ],
          ]}
        />
      </section>
    </>
  );
};

/** The `ipv6` section as facts: off, or the LAN side and what a knock unlocks. */
function ipv6Facts(v6: Settings["network"]["ipv6"] | undefined): [string, string][] {
  if (!v6?.enabled) return [["IPv6", "Off (nothing IPv6 crosses)"]];
  const unlock = v6.unlockPrefix === 128
    ? "the source address"
    : `the source's /${v6.unlockPrefix}`;
  return [
    ["IPv6 LAN address", v6.lanAddress ?? ""],
    ["IPv6 LAN prefix", v6.lanNetwork ?? ""],
    ["An IPv6 knock unlocks", unlock],
    [
      "One knock step unlocks",
      v6.pairFamilies ? "one IPv4 and one IPv6 source" : "one source, IPv4 or IPv6",
    ],
  ];
}
