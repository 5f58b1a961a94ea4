/**
 * Host keys at rest. The switch needs each key in clear to verify the station's keyed MAC,
 * so a hash would not do: keys are sealed with AES-256-GCM (WebCrypto, so any runtime) under
 * a key-encryption key the edge gets from its deployment, bound to `hostId/keyId` as
 * additional data so a sealed value cannot be moved to another host. Only the policy push
 * opens them; no read API returns them and nothing logs them.
 *
 * Sealed format: `v1.` + base64url(12-byte IV ‖ ciphertext ‖ 16-byte tag).
 *
 * @module
 */

export interface SecretBox {
  seal(plain: Uint8Array, context: string): Promise<string>
  open(sealed: string, context: string): Promise<Uint8Array>
}

const b64url = (bytes: Uint8Array): string => {
  let s = ''
  for (const b of bytes) s += String.fromCharCode(b)
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}
const fromB64url = (text: string): Uint8Array => {
  const s = atob(text.replace(/-/g, '+').replace(/_/g, '/'))
  const out = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i)
  return out
}

/**
 * @example
 * ```ts
 * const box = createSecretBox(crypto.getRandomValues(new Uint8Array(32)))
 * const sealed = await box.seal(key, 'hv1/1')
 * ```
 */
export function createSecretBox(keyEncryptionKey: Uint8Array): SecretBox {
  if (keyEncryptionKey.length !== 32) {
    throw new Error(`Cannot create secret box: key-encryption key is ${keyEncryptionKey.length} bytes, expected 32`)
  }
  const key = crypto.subtle.importKey('raw', new Uint8Array(keyEncryptionKey), 'AES-GCM', false, ['encrypt', 'decrypt'])
  const ad = (context: string) => new TextEncoder().encode(context)
  return {
    async seal(plain, context) {
      const iv = crypto.getRandomValues(new Uint8Array(12))
      const ct = new Uint8Array(
        await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: ad(context) }, await key, new Uint8Array(plain)),
      )
      const out = new Uint8Array(12 + ct.length)
      out.set(iv)
      out.set(ct, 12)
      return 'v1.' + b64url(out)
    },
    async open(sealed, context) {
      if (!sealed.startsWith('v1.')) throw new Error('Cannot open sealed secret: unknown format')
      const raw = fromB64url(sealed.slice(3))
      const plain = await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: raw.slice(0, 12), additionalData: ad(context) },
        await key,
        raw.slice(12),
      )
      return new Uint8Array(plain)
    },
  }
}
