/**
 * Settings: unlock idle timeout, knock tunables, table limits and syslog
 * collectors (administrators change them; operators read them), and the
 * network layout from the configuration file, read only. `settings.js`
 * saves with the version read (If-Match), so a concurrent change is refused.
 */
import type { FC } from "hono/jsx";
import { describedBy, Facts, FieldError, FormAlert, Notice, TextField } from "../components.tsx";
import type { Settings } from "../_types.ts";

type Collector = Settings["syslog"]["collectors"][number];

/** One syslog collector row; `i` is its index in the list the API sees. */
export const CollectorRow: FC<{ i: number | string; c?: Collector; disabled: boolean }> = (p) => {
  const base = `syslog.collectors.${p.i}`;
  const id = (f: string) => `collector-${p.i}-${f}`;
  const format = p.c?.format ?? "rfc5424";
  return (
    <li class="collector" data-index={String(p.i)}>
      <div class="field" data-field={`${base}.host`}>
        <label for={id("host")}>Host</label>
        <input
          id={id("host")}
          name="host"
          value={p.c?.host ?? ""}
          disabled={p.disabled}
          aria-describedby={describedBy(id("host"))}
        />
        <FieldError id={id("host")} field={`${base}.host`} />
      </div>
      <div class="field port" data-field={`${base}.port`}>
        <label for={id("port")}>Port</label>
        <input
          id={id("port")}
          name="port"
          inputmode="numeric"
          value={String(p.c?.port ?? 514)}
          disabled={p.disabled}
          aria-describedby={describedBy(id("port"))}
        />
        <FieldError id={id("port")} field={`${base}.port`} />
      </div>
      <div class="field" data-field={`${base}.format`}>
        <label for={id("format")}>Format</label>
        <select
          id={id("format")}
          name="format"
          disabled={p.disabled}
          aria-describedby={describedBy(id("format"))}
        >
          <option value="rfc5424" selected={format === "rfc5424"}>RFC 5424</option>
          <option value="rfc3164" selected={format === "rfc3164"}>RFC 3164 (BSD)</option>
        </select>
        <FieldError id={id("format")} field={`${base}.format`} />
      </div>
      {!p.disabled && (
        <button type="button" class="btn small secondary remove" data-remove-collector>
          Remove <span class="visually-hidden">collector</span>
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

/** The settings form and the network facts. */
export const SettingsPage: FC<{ s: Settings; canEdit: boolean }> = ({ s, canEdit }) => {
  const ro = !canEdit;
  return (
    <>
      {ro && <Notice kind="info">Only administrators can change settings.</Notice>}
      <form id="settings-form" class="form" novalidate data-version={String(s.version)}>
        <FormAlert id="settings-alert" />
        <div class="alert ok" id="settings-ok" role="status" tabindex={-1} hidden></div>
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
            {s.syslog.collectors.map((c, i) => <CollectorRow key={i} i={i} c={c} disabled={ro} />)}
          </ul>
          <p class="muted" id="collectors-empty" hidden={s.syslog.collectors.length > 0}>
            No collectors: events go to the appliance log only.
          </p>
          <p class="field-error" id="collectors-error" data-error-for="syslog.collectors" hidden>
          </p>
          {canEdit && (
            <button type="button" class="btn small secondary" id="add-collector">
              Add collector
            </button>
          )}
          <template id="collector-template">
            <CollectorRow i="__i__" disabled={false} />
          </template>
        </fieldset>
        {canEdit && (
          <div class="actions">
            <button type="submit" class="btn primary">Save settings</button>
          </div>
        )}
      </form>
      <section class="card" aria-labelledby="net-h">
        <h2 id="net-h">Network</h2>
        <p class="hint">From the configuration file; change them there and restart.</p>
        <Facts
          id="network"
          items={[
            ["WAN address", s.network.wanAddress],
            ["LAN address", s.network.lanAddress],
            ["LAN network", s.network.lanNetwork],
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
