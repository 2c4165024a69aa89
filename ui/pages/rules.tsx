/**
 * Rules: port forwards (public port or range to a LAN server's port or
 * range) and open-ports rules (ports forwarded unchanged to one LAN host),
 * each bound to a WAN interface and WAN IP (or all of them) and optionally
 * enforcing port knocking for chosen users. The forms post
 * to their own page; a refused one comes back with every problem beside its
 * field. Delete answers with the list again.
 */
import type { FC, PropsWithChildren } from "hono/jsx";
import {
  Cell,
  CheckField,
  CheckGroup,
  type Choice,
  DataTable,
  EmptyRow,
  FormAlert,
  HiddenField,
  Pill,
  SelectField,
  TextField,
} from "../components.tsx";
import type { Forward, OpenPorts, Uplink } from "../_types.ts";
import { formatPortList, formatPortRange, formatWan, hostPort } from "../_format.js";

const PROTOCOLS: Choice[] = [
  { value: "tcp", label: "TCP" },
  { value: "udp", label: "UDP" },
  { value: "both", label: "TCP and UDP" },
];

/** An uplink a rule may be bound to: its name, interface and addresses (IPv4, then IPv6). */
export interface RuleUplink {
  name: string;
  interface: string;
  addresses: string[];
}

/** The uplinks as the rule forms offer them (`GET /uplinks` lists addresses with their prefix). */
export function ruleUplinks(uplinks: readonly Uplink[]): RuleUplink[] {
  return uplinks.map((u) => ({
    name: u.name,
    interface: u.interface,
    addresses: [...u.addresses, ...(u.addresses6 ?? [])].map((a) => a.split("/")[0]),
  }));
}

/** A user to pick for a rule: name and whether their knock is on. */
export interface RuleUser {
  name: string;
  knocking: boolean;
}

function usersText(users: readonly string[], enforce: boolean): string {
  if (!enforce) return "Anyone (no knock needed)";
  return users.length === 0 ? "Any knocking user" : users.join(", ");
}

const KnockPill: FC<{ on: boolean }> = ({ on }) =>
  on ? <Pill kind="ok">Enforced</Pill> : <Pill kind="warn">Off</Pill>;

const EnabledPill: FC<{ on: boolean }> = ({ on }) =>
  on ? <Pill kind="ok">Enabled</Pill> : <Pill>Disabled</Pill>;

const RowActions: FC<{ kind: "forwards" | "open-ports"; name: string }> = ({ kind, name }) => (
  <Cell label="Actions" class="actions-cell">
    <a class="btn small secondary" href={`/rules/${kind}/${encodeURIComponent(name)}/edit`}>
      Edit <span class="visually-hidden">{name}</span>
    </a>
    <button
      type="button"
      class="btn small danger"
      data-delete-rule={name}
      data-kind={kind}
      data-kg-post={`/rules/${kind}/${encodeURIComponent(name)}/delete`}
      data-kg-confirm={`Delete rule "${name}"? Connections it admitted are not cut.`}
      data-kg-target="#rules-list"
    >
      Delete <span class="visually-hidden">{name}</span>
    </button>
  </Cell>
);

/** Props of the rules overview. */
export interface RulesListProps {
  forwards: Forward[];
  openPorts: OpenPorts[];
  canEdit: boolean;
  /** A failure to show above the tables (a refused delete). */
  alert?: string;
}

/** Both rule tables. */
export const RulesList: FC<RulesListProps> = (p) => {
  const fwdHead = [
    "Name",
    "Status",
    "WAN",
    "Protocol",
    "Public ports",
    "Private server",
    "Port knocking",
  ];
  const openHead = ["Name", "Status", "WAN", "Private host", "Ports", "Port knocking"];
  const more = ["Users", ...(p.canEdit ? ["Actions"] : [])];
  return (
    <div id="rules-list">
      <div class="alert error" id="rules-alert" role="alert" data-form-error hidden={!p.alert}>
        {p.alert}
      </div>
      <section class="card" aria-labelledby="fwd-h">
        <div class="section-head">
          <h2 id="fwd-h">Port forwarding</h2>
          {p.canEdit && (
            <a class="btn primary small" href="/rules/forwards/new">
              Add port forward
            </a>
          )}
        </div>
        <DataTable
          id="forwards"
          caption="Port forwarding rules"
          captionHidden
          headers={[
            ...fwdHead,
            ...more,
          ]}
        >
          {p.forwards.length === 0
            ? <EmptyRow span={fwdHead.length + more.length} text="No port forwards." />
            : p.forwards.map((r) => (
              <tr data-rule={r.name}>
                <th scope="row" data-label="Name">{r.name}</th>
                <Cell label="Status">
                  <EnabledPill on={r.enabled} />
                </Cell>
                <Cell label="WAN" class="mono">{formatWan(r)}</Cell>
                <Cell label="Protocol">
                  {r.protocol === "both" ? "TCP+UDP" : r.protocol.toUpperCase()}
                </Cell>
                <Cell label="Public ports" class="mono">{formatPortRange(r.publicPorts)}</Cell>
                <Cell label="Private server" class="mono">
                  {hostPort(r.privateAddress, formatPortRange(r.privatePorts))}
                  {r.privateAddress.includes(":") && (
                    <>
                      {" "}
                      <Pill>NAT66</Pill>
                    </>
                  )}
                </Cell>
                <Cell label="Port knocking">
                  <KnockPill on={r.enforceKnock} />
                </Cell>
                <Cell label="Users">{usersText(r.users, r.enforceKnock)}</Cell>
                {p.canEdit && <RowActions kind="forwards" name={r.name} />}
              </tr>
            ))}
        </DataTable>
      </section>
      <section class="card" aria-labelledby="open-h">
        <div class="section-head">
          <h2 id="open-h">Open ports</h2>
          {p.canEdit && (
            <a class="btn primary small" href="/rules/open-ports/new">
              Add open ports
            </a>
          )}
        </div>
        <DataTable
          id="open-ports"
          caption="Open-ports rules"
          captionHidden
          headers={[
            ...openHead,
            ...more,
          ]}
        >
          {p.openPorts.length === 0
            ? <EmptyRow span={openHead.length + more.length} text="No open-ports rules." />
            : p.openPorts.map((r) => (
              <tr data-rule={r.name}>
                <th scope="row" data-label="Name">{r.name}</th>
                <Cell label="Status">
                  <EnabledPill on={r.enabled} />
                </Cell>
                <Cell label="WAN" class="mono">{formatWan(r)}</Cell>
                <Cell label="Private host" class="mono">
                  {r.privateAddress}
                  {r.privateAddress.includes(":") && (
                    <>
                      {" "}
                      <Pill>pinhole</Pill>
                    </>
                  )}
                  {(r.outsideAddresses ?? []).map((a) => (
                    <div class="muted" data-outside={a.uplink}>
                      NPTv6 {a.uplink}: {a.address}
                    </div>
                  ))}
                </Cell>
                <Cell label="Ports" class="mono">{formatPortList(r.ports)}</Cell>
                <Cell label="Port knocking">
                  <KnockPill on={r.enforceKnock} />
                </Cell>
                <Cell label="Users">{usersText(r.users, r.enforceKnock)}</Cell>
                {p.canEdit && <RowActions kind="open-ports" name={r.name} />}
              </tr>
            ))}
        </DataTable>
      </section>
    </div>
  );
};

function userChoices(users: readonly RuleUser[], listed: readonly string[]): Choice[] {
  const names = new Set([...users.map((u) => u.name), ...listed]);
  const knocking = new Map(users.map((u) => [u.name, u.knocking]));
  return [...names].sort().map((n) => ({
    value: n,
    label: knocking.get(n) === false ? `${n} (port knocking off)` : n,
  }));
}

/** The fields both rule kinds share after their own: knocking and users. */
const KnockFields: FC<{ enforce: boolean; users: readonly RuleUser[]; listed: string[] }> = (p) => (
  <fieldset class="group-plain">
    <legend>Port knocking</legend>
    <CheckField
      id="rule-enforce"
      field="enforceKnock"
      label="Enforce port knocking"
      hint="New connections are admitted only from source IPs unlocked by a knock."
      checked={p.enforce}
      enables="#rule-users input"
    />
    <CheckGroup
      id="rule-users"
      field="users"
      legend="Users whose knock opens this rule"
      hint="None selected: any user with port knocking enabled."
      choices={userChoices(p.users, p.listed)}
      checked={p.listed}
      empty="No users yet."
    />
  </fieldset>
);

/**
 * The router's "WAN interface" and "WAN IP" pickers: the uplink, then one of
 * its addresses; kg.js offers only the chosen uplink's addresses (and "All",
 * the only choice while the uplink is "All").
 */
const WanFields: FC<{ uplinks: readonly RuleUplink[]; rule?: Forward | OpenPorts }> = (p) => {
  const uplink = p.rule?.uplink ?? "all";
  const known = p.uplinks.some((u) => u.name === uplink);
  const interfaces: Choice[] = [
    { value: "all", label: "All" },
    ...p.uplinks.map((u) => ({ value: u.name, label: `${u.name} (${u.interface})` })),
    // A binding to an uplink the configuration no longer has stays visible (and refused).
    ...(uplink !== "all" && !known ? [{ value: uplink, label: `${uplink} (not configured)` }] : []),
  ];
  const addresses: Choice[] = [
    { value: "all", label: "All" },
    ...p.uplinks.flatMap((u) => u.addresses.map((a) => ({ value: a, label: a, group: u.name }))),
  ];
  return (
    <fieldset class="group-plain">
      <legend>WAN</legend>
      <div class="row">
        <SelectField
          id="rule-uplink"
          field="uplink"
          label="WAN interface"
          hint="The uplink the rule listens on; All: every uplink."
          choices={interfaces}
          value={uplink}
          narrows="#rule-wan-address"
        />
        <SelectField
          id="rule-wan-address"
          field="wanAddress"
          label="WAN IP"
          hint="One of the uplink's addresses, of the private IP's family; All: every address of the uplink."
          choices={addresses}
          value={p.rule?.wanAddress ?? "all"}
        />
      </div>
    </fieldset>
  );
};

const FormButtons: FC<{ editing: boolean }> = ({ editing }) => (
  <div class="actions">
    <button type="submit" class="btn primary">{editing ? "Save" : "Apply"}</button>
    <a href="/rules" class="btn secondary">Cancel</a>
  </div>
);

/** What both rule forms share: the form element, its alert, the profile, knocking and buttons. */
const RuleForm: FC<
  PropsWithChildren<
    {
      kind: "forwards" | "open-ports";
      rule?: Forward | OpenPorts;
      users: RuleUser[];
      uplinks: RuleUplink[];
    }
  >
> = ({ kind, rule, users, uplinks, children }) => (
  <form
    id="rule-form"
    class="card form"
    novalidate
    method="post"
    action={rule ? `/rules/${kind}/${encodeURIComponent(rule.name)}/edit` : `/rules/${kind}/new`}
    data-kg-form
    data-kind={kind}
  >
    {rule && <HiddenField name="version" value={String(rule.version)} />}
    <FormAlert id="rule-alert" />
    <fieldset class="group-plain">
      <legend>Profile</legend>
      <TextField
        id="rule-name"
        field="name"
        label="Name"
        hint="Letters, digits, dot, underscore, dash; up to 64"
        value={rule?.name}
        maxlength={64}
      />
      <CheckField
        id="rule-enabled"
        field="enabled"
        label="Enabled"
        checked={rule?.enabled ?? true}
      />
    </fieldset>
    <WanFields uplinks={uplinks} rule={rule} />
    {children}
    <KnockFields enforce={rule?.enforceKnock ?? true} users={users} listed={rule?.users ?? []} />
    <FormButtons editing={rule !== undefined} />
  </form>
);

/** The add/edit form of a port forward. */
export const ForwardForm: FC<{ rule?: Forward; users: RuleUser[]; uplinks: RuleUplink[] }> = (
  { rule, users, uplinks },
) => (
  <RuleForm kind="forwards" rule={rule} users={users} uplinks={uplinks}>
    <fieldset class="group-plain">
      <legend>Forwarding</legend>
      <div class="row">
        <SelectField
          id="rule-protocol"
          field="protocol"
          label="Protocol"
          choices={PROTOCOLS}
          value={rule?.protocol ?? "tcp"}
        />
        <TextField
          id="rule-public"
          field="publicPorts"
          label="Public port or range"
          hint="e.g. 52201 or 52210-52219"
          value={rule ? formatPortRange(rule.publicPorts) : ""}
          inputmode="numeric"
        />
      </div>
      <div class="row">
        <TextField
          id="rule-address"
          field="privateAddress"
          label="Private IP"
          hint="The LAN server, e.g. 192.0.2.12; an IPv6 host (2001:db8:1::12) makes an IPv6 forward (NAT66) on the WAN IPv6 addresses"
          value={rule?.privateAddress}
        />
        <TextField
          id="rule-private"
          field="privatePorts"
          label="Private port or range"
          hint="Empty: the same as the public ports. One port, or a range as wide as the public one."
          value={rule ? formatPortRange(rule.privatePorts) : ""}
          inputmode="numeric"
        />
      </div>
    </fieldset>
  </RuleForm>
);

/** The add/edit form of an open-ports rule. */
export const OpenPortsForm: FC<{ rule?: OpenPorts; users: RuleUser[]; uplinks: RuleUplink[] }> = (
  { rule, users, uplinks },
) => (
  <RuleForm kind="open-ports" rule={rule} users={users} uplinks={uplinks}>
    <fieldset class="group-plain">
      <legend>Ports</legend>
      <TextField
        id="rule-address"
        field="privateAddress"
        label="Private IP"
        hint="The LAN host, e.g. 192.0.2.12; an IPv6 host (2001:db8:1::12) makes a pinhole to its own address, no NAT (WAN IP: All)"
        value={rule?.privateAddress}
      />
      <TextField
        id="rule-ports"
        field="ports"
        label="Ports"
        hint="Comma-separated protocol and port or range: tcp 80, tcp 443, udp 5000-5010, both 53"
        value={rule ? formatPortList(rule.ports) : ""}
      />
    </fieldset>
  </RuleForm>
);
