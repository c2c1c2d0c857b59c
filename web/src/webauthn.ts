// The browser's side of passkeys: bedrud sends WebAuthn options as JSON with binary fields in
// base64url; this turns them into what navigator.credentials wants, and the credential the
// authenticator makes back into JSON for bedrud. Nothing here is kept.

type Json = Record<string, unknown>;

function fromB64u(s: string): ArrayBuffer {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(s.length / 4) * 4, "=");
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

function toB64u(buf: ArrayBuffer | null): string | null {
  if (!buf) return null;
  let bin = "";
  for (const b of new Uint8Array(buf)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Drops `null` members, which WebAuthn's dictionaries do not accept where a member may be absent. */
function clean(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(clean);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null).map(([k, x]) => [k, clean(x)]));
  return v;
}

const withIds = (list: unknown) => ((list as Json[] | undefined) ?? []).map((c) => ({ ...c, id: fromB64u(c.id as string) }));

/** Whether this browser can use passkeys here (it needs a secure context). */
export function passkeysSupported(): boolean {
  return window.isSecureContext && typeof window.PublicKeyCredential === "function" && !!navigator.credentials;
}

/** Makes a new passkey from bedrud's creation options; the credential as JSON for bedrud. */
export async function createPasskey(options: Json): Promise<Json> {
  const o = clean(options) as Json;
  const user = o.user as Json;
  const publicKey = { ...o, challenge: fromB64u(o.challenge as string), user: { ...user, id: fromB64u(user.id as string) }, excludeCredentials: withIds(o.excludeCredentials) };
  const cred = (await navigator.credentials.create({ publicKey } as CredentialCreationOptions)) as PublicKeyCredential | null;
  if (!cred) throw new Error("no credential");
  const r = cred.response as AuthenticatorAttestationResponse;
  return {
    id: cred.id,
    rawId: toB64u(cred.rawId),
    type: cred.type,
    response: { attestationObject: toB64u(r.attestationObject), clientDataJSON: toB64u(r.clientDataJSON), transports: r.getTransports?.() ?? [] },
    extensions: cred.getClientExtensionResults(),
  };
}

/** Signs bedrud's challenge with one of the account's passkeys; the assertion as JSON. */
export async function usePasskey(options: Json): Promise<Json> {
  const o = clean(options) as Json;
  const publicKey = { ...o, challenge: fromB64u(o.challenge as string), allowCredentials: withIds(o.allowCredentials) };
  const cred = (await navigator.credentials.get({ publicKey } as CredentialRequestOptions)) as PublicKeyCredential | null;
  if (!cred) throw new Error("no credential");
  const r = cred.response as AuthenticatorAssertionResponse;
  return {
    id: cred.id,
    rawId: toB64u(cred.rawId),
    type: cred.type,
    response: { authenticatorData: toB64u(r.authenticatorData), clientDataJSON: toB64u(r.clientDataJSON), signature: toB64u(r.signature), userHandle: toB64u(r.userHandle) },
    extensions: cred.getClientExtensionResults(),
  };
}

/** The user closed the browser's passkey prompt, or it timed out. */
export function cancelled(e: unknown): boolean {
  return e instanceof DOMException && (e.name === "NotAllowedError" || e.name === "AbortError");
}
