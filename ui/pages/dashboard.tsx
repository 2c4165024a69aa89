/**
 * The dashboard: the store banner (degraded mode), clock health, summary
 * figures, the nodes of the fleet (up or down by their heartbeat), the WAN uplinks (up or down,
 * masquerade in use), the unlocked IPs (live, with Revoke, and the WAN
 * address each knock arrived on), tracked flows, traffic counters and drop
 * reasons. The whole of it
 * is one fragment (`/fragments/dashboard`), fetched again by the browser when
 * the live stream reports an unlock change, and every 10 s.
 */
import type { FC } from "hono/jsx";
import { Cell, DataTable, EmptyRow, Notice, Pill, StoreBanner } from "../components.tsx";
import type { FleetNode, Flow, Status, StoreHealth, Unlock, Uplink } from "../_types.ts";
import {
  dropRows,
  FLOW_HEADERS,
  flowCells,
  formatAgo,
  statRows,
  summaryItems,
  UNLOCK_HEADERS,
  unlockCells,
} from "../_format.js";

/** What the dashboard shows. */
export interface DashboardData {
  status: Status;
  unlocks: Unlock[];
  flows: Flow[];
  /** The WAN uplinks with their health. */
  uplinks: Uplink[];
  canRevoke: boolean;
  /** The appliances sharing the store (this one included). */
  nodes: FleetNode[];
  /** Focus the unlocks heading (after a revoke took the focused row away). */
  focusUnlocks?: boolean;
  /** A failure to show above the unlocks (a refused revoke). */
  alert?: string;
}

/** Event types after which the dashboard is fetched again. */
export const DASHBOARD_EVENTS =
  "knock-success unlock-expired unlock-revoked flow-admitted uplink-up uplink-down";
/** Of those, the ones said aloud. */
const SPOKEN_EVENTS = "knock-success unlock-expired unlock-revoked uplink-up uplink-down";

/** How many flows the dashboard lists. */
export const DASHBOARD_FLOWS = 20;

/** The clock banner: a warning unless the clock is known to be synchronised. */
export const ClockBanner: FC<{ clock: Status["clock"] }> = ({ clock }) => {
  if (clock.synchronised === true) {
    return (
      <p class="clock ok" id="clock-state">
        <span class="dot" aria-hidden="true"></span> Clock synchronised ({clock.detail})
      </p>
    );
  }
  const unknown = clock.synchronised === null;
  return (
    <Notice kind="warn" id="clock-state" role="alert">
      <strong>
        {unknown ? "Clock synchronisation unknown." : "The system clock is not synchronised."}
      </strong>{" "}
      Knock sequences and sign-in codes depend on the time; they may be refused until the clock is
      set by NTP. ({clock.detail})
    </Notice>
  );
};

const NODE_HEADERS = ["Node", "State", "Heartbeat", "Management", "Version", "Flows", "Unlocks"];

const NodeRow: FC<{ n: FleetNode; now: number }> = ({ n, now }) => (
  <tr data-node={n.name}>
    <th scope="row" data-label="Node">
      {n.name}
      {n.self && <span class="muted">(this appliance)</span>}
    </th>
    <Cell label="State">{n.up ? <Pill kind="ok">Up</Pill> : <Pill kind="error">Down</Pill>}</Cell>
    <Cell label="Heartbeat">{formatAgo(n.heartbeatAt, now)}</Cell>
    <Cell label="Management" class="mono">{n.url}</Cell>
    <Cell label="Version">{n.version}</Cell>
    <Cell label="Flows" class="num">{n.flows}</Cell>
    <Cell label="Unlocks" class="num">{n.unlocks}</Cell>
  </tr>
);

/** The fleet: every node registered in the store; one whose heartbeat is 15 s old is down. */
export const NodesPanel: FC<{ nodes: FleetNode[]; store: StoreHealth; now: number }> = (p) => (
  <section class="card" aria-labelledby="nodes-h">
    <div class="section-head">
      <h2 id="nodes-h">Nodes</h2>
      <span class="muted" id="store-backend">
        Store: {p.store.backend === "kv"
          ? "KV file"
          : p.store.connected
          ? `etcd, revision ${p.store.revision}`
          : "etcd, unreachable"}
      </span>
    </div>
    <DataTable
      id="nodes"
      caption="Nodes sharing the store"
      headers={NODE_HEADERS}
      captionHidden
      numeric={["Flows", "Unlocks"]}
    >
      {p.nodes.length === 0
        ? <EmptyRow span={NODE_HEADERS.length} text="No node has registered yet." />
        : p.nodes.map((n) => <NodeRow key={n.name} n={n} now={p.now} />)}
    </DataTable>
  </section>
);

/** One row of the unlocked-IP table. */
export const UnlockRow: FC<{ u: Unlock; now: number; canRevoke: boolean }> = (p) => {
  const [head, ...cells] = unlockCells(p.u, p.now);
  return (
    <tr data-ip={p.u.ip}>
      <th scope="row" data-label={head.label} class={head.cls}>{head.text}</th>
      {cells.map((c) => <Cell key={c.label} label={c.label} class={c.cls}>{c.text}</Cell>)}
      {p.canRevoke && (
        <Cell label="Actions">
          <button
            type="button"
            class="btn small danger"
            id={`revoke-${p.u.ip}`}
            data-revoke={p.u.ip}
            data-kg-post={`/unlocks/${encodeURIComponent(p.u.ip)}/revoke`}
            data-kg-target="#dashboard"
          >
            Revoke <span class="visually-hidden">{p.u.ip}</span>
          </button>
        </Cell>
      )}
    </tr>
  );
};

const UPLINK_HEADERS = ["Uplink", "Interface", "Addresses", "State", "Masquerade", "IPv6 gateway"];

const UplinkState: FC<{ u: Uplink }> = ({ u }) => {
  if (u.status === null) return <Pill>Unknown</Pill>;
  if (!u.status.up) return <Pill kind="error">Down</Pill>;
  return <Pill kind="ok">{u.status.probing ? "Up" : "Up (no probe)"}</Pill>;
};

/** Whether masquerade from the LAN uses the uplink now, or where it stands in the order. */
function masqueradeText(u: Uplink): string {
  if (u.status?.masquerade) return "In use";
  if (u.masqueradeOrder === null) return "Not used";
  return `Choice ${u.masqueradeOrder + 1}`;
}

const UplinkRow: FC<{ u: Uplink }> = ({ u }) => (
  <tr data-uplink={u.name}>
    <th scope="row" data-label="Uplink">{u.name}</th>
    <Cell label="Interface" class="mono">{u.interface}</Cell>
    <Cell label="Addresses" class="mono">
      {[...u.addresses, ...(u.addresses6 ?? [])].join(", ")}
    </Cell>
    <Cell label="State">
      <UplinkState u={u} />
    </Cell>
    <Cell label="Masquerade">{masqueradeText(u)}</Cell>
    <Cell label="IPv6 gateway">
      <Ipv6Gateway u={u} />
    </Cell>
  </tr>
);

/** The IPv6 next hop, its probe's health and whether the LAN's IPv6 leaves by it; "None" without. */
const Ipv6Gateway: FC<{ u: Uplink }> = ({ u }) => {
  const p = u.status?.ipv6 ?? null;
  if ((u.gateway6 ?? null) === null && p === null) return <>None</>;
  return (
    <>
      <span class="mono">{u.gateway6 ?? p?.target}</span> {p === null
        ? <Pill>No probe</Pill>
        : <Pill kind={p.up ? "ok" : "error"}>{p.up ? "Up" : "Down"}</Pill>}
      {u.lanIpv6Egress ? " LAN egress" : ""}
    </>
  );
};

const FlowRow: FC<{ f: Flow }> = ({ f }) => {
  const [head, ...cells] = flowCells(f);
  return (
    <tr>
      <th scope="row" data-label={head.label}>{head.text}</th>
      {cells.map((c) => <Cell key={c.label} label={c.label} class={c.cls}>{c.text}</Cell>)}
    </tr>
  );
};

const PairTable: FC<{ id: string; caption: string; head: [string, string]; rows: string[][] }> = (
  p,
) => (
  <DataTable
    id={p.id}
    caption={p.caption}
    headers={p.head}
    captionHidden
    numeric={[p.head[1]]}
    stack={false}
  >
    {p.rows.length === 0 ? <EmptyRow span={2} text="None so far." /> : p.rows.map(([k, v]) => (
      <tr>
        <th scope="row" data-label={p.head[0]}>{k}</th>
        <Cell label={p.head[1]} class="num">{v}</Cell>
      </tr>
    ))}
  </DataTable>
);

/** The dashboard's content. */
export const Dashboard: FC<DashboardData> = (
  { status, unlocks, flows, uplinks, nodes, canRevoke, focusUnlocks, alert },
) => {
  const now = status.clock.now;
  const sorted = [...unlocks].sort((a, b) => b.unlockedAt - a.unlockedAt);
  const headers = canRevoke ? [...UNLOCK_HEADERS, "Actions"] : UNLOCK_HEADERS;
  return (
    <div
      id="dashboard"
      data-kg-src="/fragments/dashboard"
      data-kg-events={DASHBOARD_EVENTS}
      data-kg-speak={SPOKEN_EVENTS}
      data-kg-poll="10000"
    >
      <StoreBanner store={status.store} now={now} />
      <ClockBanner clock={status.clock} />
      <section aria-labelledby="summary-h">
        <h2 id="summary-h" class="visually-hidden">Summary</h2>
        <dl class="stats" id="summary">
          {summaryItems(status).map(([k, v]) => (
            <div class="stat">
              <dt>{k}</dt>
              <dd>{v}</dd>
            </div>
          ))}
        </dl>
      </section>
      <section class="card" aria-labelledby="uplinks-h">
        <h2 id="uplinks-h">WAN uplinks</h2>
        <DataTable id="uplinks" caption="WAN uplinks" headers={UPLINK_HEADERS} captionHidden>
          {uplinks.map((u) => <UplinkRow key={u.name} u={u} />)}
        </DataTable>
      </section>
      <NodesPanel nodes={nodes} store={status.store} now={now} />
      <section class="card" aria-labelledby="unlocks-h">
        <div class="section-head">
          <h2
            id="unlocks-h"
            tabindex={focusUnlocks ? -1 : undefined}
            data-kg-focus={focusUnlocks ? "" : undefined}
          >
            Unlocked IPs
          </h2>
          <span class="pill muted" id="live-state" data-kg-live>Connecting…</span>
        </div>
        <p class="hint">
          Source addresses that completed a knock sequence, and the WAN address the knock arrived
          on. New connections from them reach the rules that enforce port knocking on every uplink
          (all rules, whatever WAN address they are bound to) until the unlock expires or is
          revoked.
        </p>
        <div class="alert error" id="unlocks-alert" role="alert" data-form-error hidden={!alert}>
          {alert}
        </div>
        <DataTable
          id="unlocks"
          caption="Unlocked IPs"
          headers={headers}
          captionHidden
          numeric={["Drift", "Flows", "Bytes"]}
        >
          {sorted.length === 0
            ? <EmptyRow span={headers.length} text="No IP is unlocked." />
            : sorted.map((u) => <UnlockRow key={u.ip} u={u} now={now} canRevoke={canRevoke} />)}
        </DataTable>
      </section>
      <section class="card" aria-labelledby="flows-h">
        <div class="section-head">
          <h2 id="flows-h">Tracked flows</h2>
          <span class="muted" id="flows-count">
            {flows.length >= DASHBOARD_FLOWS ? `first ${DASHBOARD_FLOWS}` : `${flows.length}`}
          </span>
        </div>
        <DataTable
          id="flows"
          caption="Tracked flows"
          headers={FLOW_HEADERS}
          captionHidden
          numeric={["Packets", "Bytes"]}
        >
          {flows.length === 0
            ? <EmptyRow span={FLOW_HEADERS.length} text="No flow is tracked." />
            : flows.map((f, i) => <FlowRow key={i} f={f} />)}
        </DataTable>
      </section>
      <div class="columns">
        <section class="card" aria-labelledby="traffic-h">
          <h2 id="traffic-h">Traffic</h2>
          <PairTable
            id="traffic"
            caption="Traffic counters"
            head={["Counter", "Value"]}
            rows={statRows(status.counters.stats)}
          />
        </section>
        <section class="card" aria-labelledby="drops-h">
          <h2 id="drops-h">Drop reasons</h2>
          <PairTable
            id="drops"
            caption="Dropped packets by reason"
            head={["Reason", "Packets"]}
            rows={dropRows(status.counters.drops)}
          />
        </section>
      </div>
    </div>
  );
};
