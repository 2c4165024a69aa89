/**
 * `users list|show|add|set|delete|verify|rotate`: the appliance's users and
 * their TOTP enrolment. A new or rotated secret is shown once (and as a QR
 * code with `--qr`); `users verify NAME CODE` activates it.
 */
import { Option } from "@commander-js/extra-typings";
import type { User, UserEnrollment } from "../api_types.ts";
import { clientFor, emit, type GlobalOptions, type ShellContext } from "../context.ts";
import { UsageError } from "../io.ts";
import type { Root } from "../program.ts";
import { renderPairs, userDetail, usersTable } from "../tables.ts";
import { intArg, listArg } from "./args.ts";

const ROLES = ["administrator", "operator", "viewer"] as const;
const TRANSPORTS = ["tcp", "udp", "any"] as const;

/** Knock and access options shared by `add` and `set`. */
interface KnockOptions {
  knockPort?: number;
  knockLength?: number;
  knockTransport?: "tcp" | "udp" | "any";
  knock?: boolean;
  allowedRules?: string[];
}

/** The `knock` part of a create or patch body, or undefined when no option touched it. */
function knockPatch(o: KnockOptions): Record<string, unknown> | undefined {
  const k: Record<string, unknown> = {};
  if (o.knockPort !== undefined) k.firstPort = o.knockPort;
  if (o.knockLength !== undefined) k.length = o.knockLength;
  if (o.knockTransport !== undefined) k.transport = o.knockTransport;
  if (o.knock === false) k.enabled = false;
  else if (o.knockPort !== undefined) k.enabled = true;
  return Object.keys(k).length === 0 ? undefined : k;
}

/** Prints `uri` as a QR code for a phone's authenticator. */
async function printQr(ctx: ShellContext, uri: string): Promise<void> {
  // @deno-types="@types/qrcode"
  const QRCode = (await import("qrcode")).default;
  ctx.io.out(await QRCode.toString(uri, { type: "terminal", small: true }));
}

/** Shows a secret to enrol and how to finish. */
async function showEnrollment(
  ctx: ShellContext,
  o: GlobalOptions & { qr?: true },
  body: UserEnrollment,
  headline: string,
): Promise<void> {
  emit(ctx, o, body, () =>
    [
      headline,
      renderPairs([
        ["TOTP secret", body.enrollment.secret],
        ["otpauth URI", body.enrollment.otpauthUri],
        ["Next", `users verify ${body.user.name} <code from the authenticator>`],
      ]),
    ].join("\n"));
  if (o.qr && !o.json) await printQr(ctx, body.enrollment.otpauthUri);
}

/** The password from the option, else asked twice at the terminal. */
async function newPassword(ctx: ShellContext, name: string, given?: string): Promise<string> {
  if (given !== undefined) return given;
  const p = ctx.io.prompter;
  if (p === null) throw new UsageError(`Cannot set a password for "${name}": pass --password`);
  const first = await p.password(`Password for ${name}:`);
  if (await p.password("Again:") !== first) {
    throw new UsageError(`Cannot set a password for "${name}": the two entries differ`);
  }
  return first;
}

/** Registers the `users` commands. */
export function registerUsers(root: Root, ctx: ShellContext): void {
  const users = root.command("users").description("users, roles and TOTP enrolment");
  const path = (name: string) => `/users/${encodeURIComponent(name)}`;

  users.command("list").description("list every user").action(async (_o, cmd) => {
    const o = cmd.optsWithGlobals();
    const body = await (await clientFor(ctx, o)).get<{ users: User[] }>("/users");
    emit(ctx, o, body, () => usersTable(body.users));
  });

  users.command("show <name>").description("show one user").action(async (name, _o, cmd) => {
    const o = cmd.optsWithGlobals();
    const body = await (await clientFor(ctx, o)).get<User>(path(name));
    emit(ctx, o, body, () => userDetail(body));
  });

  users.command("add <name>").description("create a user; prints the TOTP secret to enrol")
    .addOption(new Option("--role <role>", "role").choices(ROLES).default("viewer" as const))
    .option("-p, --password <password>", "password, 8+ characters (else asked)")
    .option("--knock-port <port>", "first knock port; enables knocking", intArg("port", 1, 65535))
    .option("--knock-length <n>", "knock ports after the first (default 3)", intArg("length", 1, 8))
    .addOption(new Option("--knock-transport <t>", "knock transport").choices(TRANSPORTS))
    .option(
      "--allowed-rules <names>",
      'rules their unlocks open, comma-separated ("*" = all)',
      listArg,
    )
    .option("--qr", "also print the secret as a QR code")
    .action(async (name, _o, cmd) => {
      const o = cmd.optsWithGlobals();
      const password = await newPassword(ctx, name, o.password);
      const body: Record<string, unknown> = { name, password, role: o.role };
      const knock = knockPatch(o);
      if (knock !== undefined) body.knock = knock;
      if (o.allowedRules !== undefined) body.allowedRules = o.allowedRules;
      const created = await (await clientFor(ctx, o)).post<UserEnrollment>("/users", body);
      await showEnrollment(
        ctx,
        o,
        created,
        `Created user ${name} (${o.role}); not active until verified.`,
      );
    });

  users.command("set <name>").description("change a user's role, password, knock or rules")
    .addOption(new Option("--role <role>", "new role").choices(ROLES))
    .option("-p, --password <password>", "new password (ends their sessions)")
    .option("--knock-port <port>", "first knock port; enables knocking", intArg("port", 1, 65535))
    .option("--knock-length <n>", "knock ports after the first", intArg("length", 1, 8))
    .addOption(new Option("--knock-transport <t>", "knock transport").choices(TRANSPORTS))
    .option("--no-knock", "disable knocking (ends their unlocks)")
    .option("--allowed-rules <names>", "rules their unlocks open, comma-separated", listArg)
    .action(async (name, _o, cmd) => {
      const o = cmd.optsWithGlobals();
      const patch: Record<string, unknown> = {};
      if (o.role !== undefined) patch.role = o.role;
      if (o.password !== undefined) patch.password = o.password;
      const knock = knockPatch(o);
      if (knock !== undefined) patch.knock = knock;
      if (o.allowedRules !== undefined) patch.allowedRules = o.allowedRules;
      if (Object.keys(patch).length === 0) {
        throw new UsageError(`Nothing to change for user "${name}": give an option`);
      }
      const api = await clientFor(ctx, o);
      const body = await api.request<User>("PATCH", path(name), { body: patch });
      emit(ctx, o, body, () => `Changed user ${name}.\n${userDetail(body)}`);
    });

  users.command("delete <name>").description("delete a user (ends their sessions and unlocks)")
    .action(async (name, _o, cmd) => {
      const o = cmd.optsWithGlobals();
      await (await clientFor(ctx, o)).request("DELETE", path(name));
      emit(ctx, o, { deleted: name }, () => `Deleted user ${name}.`);
    });

  users.command("verify <name> <code>").description("confirm a TOTP enrolment with a code")
    .action(async (name, code, _o, cmd) => {
      const o = cmd.optsWithGlobals();
      const api = await clientFor(ctx, o);
      const body = await api.post<User>(`${path(name)}/mfa/verify`, { code });
      emit(ctx, o, body, () => `User ${name} is enrolled and active.`);
    });

  users.command("rotate <name>").description("start enrolling a new TOTP secret")
    .option("--qr", "also print the secret as a QR code")
    .action(async (name, _o, cmd) => {
      const o = cmd.optsWithGlobals();
      const api = await clientFor(ctx, o);
      const body = await api.post<UserEnrollment>(`${path(name)}/mfa/rotate`);
      await showEnrollment(
        ctx,
        o,
        body,
        `New TOTP secret for ${name}; the old one stays valid until verified.`,
      );
    });
}
