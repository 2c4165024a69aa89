/**
 * TOTP secrets encrypted at rest: AES-256-GCM through WebCrypto, with a raw
 * 32-byte key kept in a file of mode 0600 beside the KV file.
 */
import { fromBase64, toBase64 } from "./_ids.ts";

/** An encrypted value as stored: base64 IV and base64 ciphertext (tag included). */
export interface SealedSecret {
  iv: string;
  ciphertext: string;
}

const KEY_BYTES = 32;
const IV_BYTES = 12;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encrypts and decrypts short secrets with one AES-GCM key. */
export class SecretBox {
  readonly #key: CryptoKey;
  /**
   * Names the key without revealing it: the first 8 bytes of its SHA-256, in
   * hex. A backup records it, so an import knows which key file it needs.
   */
  readonly keyId: string;

  private constructor(key: CryptoKey, keyId: string) {
    this.#key = key;
    this.keyId = keyId;
  }

  /** A box over 32 raw key bytes. */
  static async fromRawKey(raw: Uint8Array<ArrayBuffer>): Promise<SecretBox> {
    if (raw.length !== KEY_BYTES) {
      throw new Error(`Cannot use secret key: it has ${raw.length} bytes, expected ${KEY_BYTES}`);
    }
    const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, [
      "encrypt",
      "decrypt",
    ]);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", raw));
    const keyId = [...digest.subarray(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
    return new SecretBox(key, keyId);
  }

  /** A box over a fresh random key that lives only in memory (tests, `:memory:` stores). */
  static ephemeral(): Promise<SecretBox> {
    return SecretBox.fromRawKey(crypto.getRandomValues(new Uint8Array(KEY_BYTES)));
  }

  /**
   * Encrypts `plain`. `context` (e.g. the user name) is bound as associated
   * data, so a ciphertext copied to another record does not decrypt there.
   */
  async seal(plain: string, context: string): Promise<SealedSecret> {
    const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
    const data = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: encoder.encode(context) },
      this.#key,
      encoder.encode(plain),
    );
    return { iv: toBase64(iv), ciphertext: toBase64(new Uint8Array(data)) };
  }

  /** Decrypts what `seal` produced with the same `context`; throws if tampered. */
  async open(sealed: SealedSecret, context: string): Promise<string> {
    try {
      const data = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: fromBase64(sealed.iv), additionalData: encoder.encode(context) },
        this.#key,
        fromBase64(sealed.ciphertext),
      );
      return decoder.decode(data);
    } catch {
      throw new Error(
        `Cannot decrypt secret of "${context}": wrong key file or damaged record`,
      );
    }
  }
}

/** Reads an existing key file after checking its mode and size. */
async function readKeyFile(path: string): Promise<Uint8Array<ArrayBuffer>> {
  const info = await Deno.stat(path);
  if (!info.isFile) throw new Error(`Cannot open secret key file "${path}": not a regular file`);
  const mode = (info.mode ?? 0) & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new Error(
      `Cannot open secret key file "${path}": mode 0${mode.toString(8)} is too wide, ` +
        `expected 0600 (chmod 600 "${path}")`,
    );
  }
  if (info.size !== KEY_BYTES) {
    throw new Error(
      `Cannot open secret key file "${path}": it has ${info.size} bytes, expected ${KEY_BYTES}`,
    );
  }
  return await Deno.readFile(path);
}

/** Opens an existing key file (a backup's key for `config import --key`). */
export async function loadKey(path: string): Promise<SecretBox> {
  return await SecretBox.fromRawKey(await readKeyFile(path));
}

/**
 * Opens the key file at `path`, creating it with a fresh random key and mode
 * 0600 when it does not exist. Refuses a file with group/other permissions or
 * of the wrong size.
 */
export async function loadOrCreateKey(path: string): Promise<SecretBox> {
  try {
    return await SecretBox.fromRawKey(await readKeyFile(path));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const raw = crypto.getRandomValues(new Uint8Array(KEY_BYTES));
  // createNew: two first starts racing cannot both write a key.
  await Deno.writeFile(path, raw, { mode: 0o600, createNew: true });
  await Deno.chmod(path, 0o600); // the umask filters `mode`; make it exactly 0600
  return await SecretBox.fromRawKey(raw);
}
