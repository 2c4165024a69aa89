/**
 * Users: the list, the "Add user" form followed by the TOTP enrolment (QR
 * code, secret, otpauth URI, then a code to verify, as on the router), the
 * edit form and the secret rotation page. A saved new user is answered with
 * the enrolment panel in place of the form; the verification form is
 * answered with itself (problems) or the confirmation.
 */
import type { FC } from "hono/jsx";
import { raw } from "hono/html";
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
import type { User } from "../_types.ts";

/** What a phone authenticator needs to enrol (as the API returns it once). */
export interface Enrollment {
  secret: string;
  otpauthUri: string;
  qrSvg: string;
}

const ROLE_CHOICES: Choice[] = [
  { value: "administrator", label: "Administrator" },
  { value: "operator", label: "Operator" },
  { value: "viewer", label: "Viewer" },
];

const ROLE_HINT = "Administrators manage everything, users and settings included; operators " +
  "manage rules and revoke unlocks; viewers only look.";

const TRANSPORT_CHOICES: Choice[] = [
  { value: "any", label: "TCP or UDP" },
  { value: "tcp", label: "TCP only" },
  { value: "udp", label: "UDP only" },
];

const LENGTH_CHOICES: Choice[] = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => ({
  value: String(n),
  label: `${n} port${n === 1 ? "" : "s"} after the first`,
}));

/** The user's state as a coloured label. */
export const UserStatus: FC<{ u: User }> = ({ u }) => {
  if (!u.mfa.enrolled) return <Pill kind="warn">Not verified</Pill>;
  if (u.mfa.rotating) return <Pill kind="warn">Active, new secret pending</Pill>;
  return <Pill kind="ok">Active</Pill>;
};

/** The knock settings of a user in a few words. */
export function knockText(u: User): string {
  if (!u.knock.enabled) return "Off";
  const t = u.knock.transport === "any" ? "TCP or UDP" : u.knock.transport.toUpperCase();
  return `From port ${u.knock.firstPort}, ${u.knock.length} more, ${t}`;
}

/** The rules a user's unlocks open, in words. */
export function allowedText(rules: readonly string[]): string {
  if (rules.includes("*")) return "All rules";
  return rules.length === 0 ? "None" : rules.join(", ");
}

/** The users table. */
export const UsersList: FC<{ users: User[]; me: string; alert?: string }> = (p) => (
  <div id="users-list">
    <div class="toolbar">
      <a class="btn primary" href="/users/new">Add user</a>
    </div>
    <div class="alert error" id="users-alert" role="alert" data-form-error hidden={!p.alert}>
      {p.alert}
    </div>
    <DataTable
      id="users"
      caption="Users"
      captionHidden
      headers={["Name", "Role", "Status", "Port knocking", "Allowed rules", "Actions"]}
    >
      {p.users.length === 0
        ? <EmptyRow span={6} text="No users." />
        : p.users.map((u) => (
          <tr data-user={u.name}>
            <th scope="row" data-label="Name">{u.name}</th>
            <Cell label="Role">{u.role}</Cell>
            <Cell label="Status">
              <UserStatus u={u} />
            </Cell>
            <Cell label="Port knocking">{knockText(u)}</Cell>
            <Cell label="Allowed rules">{allowedText(u.allowedRules)}</Cell>
            <Cell label="Actions" class="actions-cell">
              <a class="btn small secondary" href={`/users/${encodeURIComponent(u.name)}/edit`}>
                Edit <span class="visually-hidden">{u.name}</span>
              </a>
              <a class="btn small secondary" href={`/users/${encodeURIComponent(u.name)}/mfa`}>
                {u.mfa.enrolled ? "New secret" : "Finish enrollment"}{" "}
                <span class="visually-hidden">for {u.name}</span>
              </a>
              {u.name !== p.me && (
                <button
                  type="button"
                  class="btn small danger"
                  data-delete-user={u.name}
                  data-kg-post={`/users/${encodeURIComponent(u.name)}/delete`}
                  data-kg-confirm={`Delete user "${u.name}"? Their sessions end and their unlocks are revoked.`}
                  data-kg-target="#users-list"
                >
                  Delete <span class="visually-hidden">{u.name}</span>
                </button>
              )}
            </Cell>
          </tr>
        ))}
    </DataTable>
  </div>
);

/** The API's QR code as inline SVG (our own API's output; anything else is dropped). */
function qrMarkup(svg: string): string {
  const at = svg.indexOf("<svg");
  const body = at < 0 ? "" : svg.slice(at);
  if (!/^<svg[\s>]/.test(body) || /<(script|foreignObject)|\son\w+=/i.test(body)) return "";
  return body.replace(/^<svg/, '<svg aria-hidden="true" focusable="false"');
}

/** The verification form of an enrolment (answered with itself or `VerifyDone`). */
export const VerifyForm: FC<{ user: string }> = ({ user }) => (
  <form
    id="verify-form"
    class="form inline-form"
    novalidate
    method="post"
    action={`/users/${encodeURIComponent(user)}/verify`}
    data-kg-form
  >
    <FormAlert id="verify-alert" />
    <TextField
      id="enroll-code"
      field="code"
      label="Validation code"
      hint="The 6 digits from the authenticator"
      inputmode="numeric"
      autocomplete="one-time-code"
      maxlength={6}
      class="code"
    />
    <div class="actions">
      <button type="submit" class="btn primary">Verify</button>
    </div>
  </form>
);

/** The confirmation after a verified code. */
export const VerifyDone: FC<{ user: string; back: string }> = ({ user, back }) => (
  <div class="alert ok" id="verify-ok" role="status" tabindex={-1} data-kg-focus>
    <p>
      <strong>Verify successfully.</strong> User {user} is active with this secret.
    </p>
    <p>
      <a href={back} class="btn small primary" id="verify-done">OK</a>
    </p>
  </div>
);

/** The TOTP enrolment step for a secret the API has just returned. */
export const EnrollmentPanel: FC<{ user: string; back: string; enrollment: Enrollment }> = (
  { user, back, enrollment },
) => (
  <section class="card enroll" id="enroll" aria-labelledby="enroll-h" data-user={user}>
    <h2 id="enroll-h" tabindex={-1} data-kg-focus>
      Set up the authenticator for <span data-enroll-user>{user}</span>
    </h2>
    <ol class="steps">
      <li>
        Scan the QR code with an authenticator app, or copy the secret into the knock tool.
      </li>
      <li>Enter the 6-digit code the app shows and select Verify.</li>
    </ol>
    <div class="enroll-grid">
      <div class="qr" id="enroll-qr" role="img" aria-label="QR code of the TOTP secret">
        {raw(qrMarkup(enrollment.qrSvg))}
      </div>
      <div class="enroll-text">
        <div class="field">
          <label for="enroll-secret">TOTP secret</label>
          <div class="copy-row">
            <input id="enroll-secret" class="mono" readonly value={enrollment.secret} />
            <button type="button" class="btn small secondary" data-copy="enroll-secret">
              Copy <span class="visually-hidden">secret</span>
            </button>
          </div>
        </div>
        <div class="field">
          <label for="enroll-uri">otpauth URI</label>
          <div class="copy-row">
            <input id="enroll-uri" class="mono" readonly value={enrollment.otpauthUri} />
            <button type="button" class="btn small secondary" data-copy="enroll-uri">
              Copy <span class="visually-hidden">URI</span>
            </button>
          </div>
        </div>
      </div>
    </div>
    <VerifyForm user={user} />
    <p class="muted small">
      Not verified yet? <a href={back}>Leave</a>; the user stays inactive until a code is verified.
    </p>
  </section>
);

/** Where the enrolment panel goes on the rotation page (empty until a secret is made). */
export const EnrollmentSlot: FC<{ alert?: string }> = ({ alert }) => (
  <div id="enroll">
    <div class="alert error" id="rotate-alert" role="alert" data-form-error hidden={!alert}>
      {alert}
    </div>
  </div>
);

/** Props of the user form. */
export interface UserFormProps {
  /** The user being edited; absent for a new one. */
  user?: User;
  /** Every rule name, for the allowed-rules choice. */
  rules: string[];
}

/** The add/edit user form. */
export const UserForm: FC<UserFormProps> = ({ user, rules }) => {
  const editing = user !== undefined;
  const allowed = user?.allowedRules ?? ["*"];
  const knock = user?.knock ?? { enabled: true, firstPort: 0, length: 3, transport: "any" };
  return (
    <form
      id="user-form"
      class="card form"
      novalidate
      method="post"
      action={editing ? `/users/${encodeURIComponent(user.name)}/edit` : "/users/new"}
      data-kg-form
      data-kg-target={editing ? undefined : "#user-new"}
      data-mode={editing ? "edit" : "new"}
    >
      {editing && <HiddenField name="version" value={String(user.version)} />}
      <FormAlert id="user-alert" />
      <fieldset class="group-plain">
        <legend>Account</legend>
        {editing
          ? (
            <p class="readonly-field">
              User name: <strong>{user.name}</strong>
            </p>
          )
          : (
            <TextField
              id="user-name"
              field="name"
              label="User name"
              hint="1 to 32 characters: a-z, 0-9, dot, underscore, dash"
              maxlength={32}
              autocomplete="off"
            />
          )}
        <TextField
          id="user-password"
          field="password"
          type="password"
          label={editing ? "New password" : "Password"}
          hint={editing ? "Leave empty to keep the current password" : "At least 8 characters"}
          autocomplete="new-password"
        />
        <SelectField
          id="user-role"
          field="role"
          label="Role"
          hint={ROLE_HINT}
          choices={ROLE_CHOICES}
          value={user?.role ?? "operator"}
        />
      </fieldset>
      <fieldset class="group-plain">
        <legend>Port knocking</legend>
        <CheckField
          id="knock-enabled"
          field="knock.enabled"
          label="Enable port knocking for this user"
          checked={knock.enabled}
          enables="#knock-first-port, #knock-length, #knock-transport"
        />
        <div class="row">
          <TextField
            id="knock-first-port"
            field="knock.firstPort"
            label="First knock port"
            hint="1-65535, unique among users"
            inputmode="numeric"
            value={knock.firstPort === 0 ? "" : knock.firstPort}
            maxlength={5}
          />
          <SelectField
            id="knock-length"
            field="knock.length"
            label="Sequence length"
            choices={LENGTH_CHOICES}
            value={String(knock.length)}
          />
          <SelectField
            id="knock-transport"
            field="knock.transport"
            label="Transport"
            choices={TRANSPORT_CHOICES}
            value={knock.transport}
          />
        </div>
      </fieldset>
      <CheckGroup
        id="user-rules"
        field="allowedRules"
        legend="Allowed rules"
        hint="The rules this user's knock unlocks. All rules includes rules added later."
        choices={[
          { value: "*", label: "All rules", exclusive: true },
          ...rules.map((r) => ({ value: r, label: r })),
        ]}
        checked={allowed}
      />
      <div class="actions">
        <button type="submit" class="btn primary">{editing ? "Save" : "Apply"}</button>
        <a href="/users" class="btn secondary">Cancel</a>
      </div>
    </form>
  );
};

/** The secret rotation page's content. */
export const MfaRotation: FC<{ user: User; back: string }> = ({ user, back }) => (
  <>
    <div class="card" id="rotate-intro">
      {user.mfa.enrolled
        ? (
          <p>
            A new TOTP secret replaces the current one once a code from it is verified. Until then
            {" "}
            <strong>{user.name}</strong> keeps signing in and knocking with the current secret.
          </p>
        )
        : (
          <p>
            <strong>{user.name}</strong>{" "}
            has not verified a TOTP secret yet and cannot sign in or knock. Generate a new secret to
            finish the enrollment.
          </p>
        )}
      <div class="actions">
        <button
          type="button"
          class="btn primary"
          id="rotate-btn"
          data-kg-post={`/users/${encodeURIComponent(user.name)}/rotate`}
          data-kg-target="#enroll"
        >
          Generate new secret
        </button>
        <a href={back} class="btn secondary">Cancel</a>
      </div>
    </div>
    <EnrollmentSlot />
  </>
);
