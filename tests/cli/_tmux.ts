/**
 * A program on a private tmux server (its own socket, no user config), for
 * driving an interactive terminal program in tests: type keys, read the
 * screen, wait (bounded) for what should appear.
 */

/** True when tmux can be run here. */
export function hasTmux(): boolean {
  try {
    return new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** One tmux session running one command in a 200x50 window. */
export class TmuxSession {
  readonly socket: string;
  readonly name: string;
  #statusFile = "";

  /** Names from `tag`, unique per test process. */
  constructor(tag: string) {
    this.socket = `${tag}${Deno.pid}`;
    this.name = `${tag}${Deno.pid}`;
  }

  async #tmux(...args: string[]): Promise<string> {
    const out = await new Deno.Command("tmux", {
      args: ["-L", this.socket, "-f", "/dev/null", ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    if (!out.success) throw new Error(`tmux ${args[0]} failed: ${dec.decode(out.stderr)}`);
    return dec.decode(out.stdout);
  }

  /** Starts `command` (a shell command line); its exit status goes to `statusFile`. */
  async start(command: string, statusFile: string): Promise<void> {
    this.#statusFile = statusFile;
    // tmux reports a dead pane's status only once it reaps the process, which may lag
    // under load; a status file written by the shell that ran the command does not.
    await this.#tmux(
      "new-session",
      "-d",
      "-s",
      this.name,
      "-x",
      "200",
      "-y",
      "50",
      `${command}; echo $? > ${statusFile}`,
      ";",
      "set-option",
      "-t",
      this.name,
      "remain-on-exit",
      "on",
    );
  }

  /** Types `text` literally. */
  async type(text: string): Promise<void> {
    await this.#tmux("send-keys", "-t", this.name, "-l", text);
  }

  /** Presses keys by tmux name, one write each (`Tab`, `Enter`, `C-d`, `Up`). */
  async press(...keys: string[]): Promise<void> {
    // One key per send-keys: readline takes several keys in one read as a paste.
    for (const k of keys) await this.#tmux("send-keys", "-t", this.name, k);
  }

  /** The screen, lines with trailing blanks removed. */
  async screen(): Promise<string> {
    const text = await this.#tmux("capture-pane", "-p", "-J", "-t", this.name);
    return text.split("\n").map((l) => l.trimEnd()).join("\n").trimEnd();
  }

  /** Null while the command runs, else its exit status. */
  async exitStatus(): Promise<number | null> {
    try {
      const text = (await Deno.readTextFile(this.#statusFile)).trim();
      return text === "" ? null : Number(text);
    } catch {
      return null;
    }
  }

  /** Waits up to `timeoutMs` for the command to end; its exit status, or null. */
  async waitExit(timeoutMs = 10_000): Promise<number | null> {
    const end = Date.now() + timeoutMs;
    let status = await this.exitStatus();
    while (status === null && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 100));
      status = await this.exitStatus();
    }
    return status;
  }

  /** Waits up to `timeoutMs` until `check` holds for the screen; returns the last screen. */
  async waitFor(
    check: (screen: string) => boolean,
    what: string,
    timeoutMs = 10_000,
  ): Promise<string> {
    const end = Date.now() + timeoutMs;
    let screen = await this.screen();
    while (!check(screen)) {
      if (Date.now() > end) throw new Error(`Timed out waiting for ${what}; screen:\n${screen}`);
      await new Promise((r) => setTimeout(r, 100));
      screen = await this.screen();
    }
    return screen;
  }

  /** Ends the session and its server; never throws. */
  async kill(): Promise<void> {
    await this.#tmux("kill-server").catch(() => {});
  }
}
