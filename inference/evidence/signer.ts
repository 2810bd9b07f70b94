// The box key that signs evidence manifests: ECDSA P-256 over SHA-256, DER encoded. The key is, in order, the
// configured evidence.sign_key, the mTLS client key `provision` creates (mqtt.tls.key, whose certificate the
// center signed), or a key generated in the data dir on first use. The manifest says which (`signer`).
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SIGNATURE_ALGORITHM, keyIdOf, signManifest } from '../../contract/evidence.js';
import { AgentError } from '../../core/errors.js';
import { writeFileAtomic } from '../../core/fs.js';
import type { Logger } from '../../core/log.js';

/** The generated key's file in the data dir. */
export const GENERATED_KEY_FILE = 'evidence-signing.key';

export type KeySource = 'sign_key' | 'mqtt_tls' | 'generated';

export interface SignerOptions {
  /** evidence.sign_key (absolute): used when set; an unusable one is an error. */
  sign_key?: string;
  /** mqtt.tls key and certificate (absolute): used when the key is EC P-256. */
  tls?: { key?: string; cert?: string };
  /** Where a key is generated when neither is there. */
  data_dir: string;
  log?: Logger;
}

/** What a manifest says about its signer. */
export interface SignerInfo {
  algorithm: typeof SIGNATURE_ALGORITHM;
  /** SHA-256 (hex) of the public key's SubjectPublicKeyInfo, DER. */
  key_id: string;
  key_source: KeySource;
  /** Whether a certificate of this key is in the package (cert.pem: the mTLS client certificate). */
  cert: 'present' | 'absent';
  /** The public key, SPKI PEM: verifies manifest.sig without the certificate. */
  public_key: string;
}

export class EvidenceSignerError extends AgentError {}

/** Loads its key on first use (a few file reads), so constructing it never fails the agent's start. */
export class EvidenceSigner {
  private key: KeyObject | undefined;
  private meta: SignerInfo | undefined;
  private certPem: string | undefined;

  constructor(private readonly opts: SignerOptions) {}

  /** Signer details for the manifest (loads the key). */
  info(): SignerInfo {
    this.load();
    return this.meta!;
  }

  /** The certificate (PEM) that goes into the package as cert.pem, when the key has one. */
  certificate(): string | undefined {
    this.load();
    return this.certPem;
  }

  /** DER-encoded ECDSA P-256 signature of SHA-256(data). */
  sign(data: Uint8Array): Buffer {
    this.load();
    return signManifest(data, this.key!);
  }

  private load(): void {
    if (this.key) return;
    const { sign_key, tls, data_dir, log } = this.opts;
    let key: KeyObject | undefined;
    let source: KeySource;
    if (sign_key !== undefined) {
      key = readP256(sign_key);
      if (!key) throw new EvidenceSignerError('EVIDENCE_SIGN_KEY', `evidence.sign_key ${sign_key} is not an EC P-256 private key (PEM)`);
      source = 'sign_key';
    } else {
      key = tls?.key !== undefined ? readP256(tls.key) : undefined;
      source = 'mqtt_tls';
      if (tls?.key !== undefined && !key) log?.warn({ key: tls.key }, 'mqtt.tls.key is not an EC P-256 key: evidence is signed with a key of its own');
      if (!key) {
        key = generatedKey(join(data_dir, GENERATED_KEY_FILE), log);
        source = 'generated';
      }
    }
    const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
    const pub = createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
    if (source === 'mqtt_tls' && tls?.cert !== undefined) this.certPem = matchingCertificate(tls.cert, spki, log);
    this.key = key;
    this.meta = { algorithm: SIGNATURE_ALGORITHM, key_id: keyIdOf(key), key_source: source, cert: this.certPem ? 'present' : 'absent', public_key: pub };
  }
}

/** The EC P-256 private key in a PEM file, or undefined (missing, unreadable, another kind of key). */
function readP256(file: string): KeyObject | undefined {
  try {
    const key = createPrivateKey(readFileSync(file));
    return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? key : undefined;
  } catch {
    return undefined;
  }
}

/** The data dir's evidence key, created (0600) on first use. */
function generatedKey(file: string, log: Logger | undefined): KeyObject {
  if (existsSync(file)) {
    const key = readP256(file);
    if (key) return key;
    throw new EvidenceSignerError('EVIDENCE_SIGN_KEY', `${file} exists but is not an EC P-256 private key: move it away to let the agent create a new one`);
  }
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileAtomic(file, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600);
  } catch (err) {
    throw new EvidenceSignerError('EVIDENCE_SIGN_KEY', `cannot create the evidence signing key ${file} (${(err as Error).message}): set analytics.evidence.sign_key`, { cause: err });
  }
  log?.warn({ file }, 'no evidence signing key configured: generated one (its manifests say key_source "generated"; register its key_id at the center)');
  return privateKey;
}

/** The certificate PEM when it certifies exactly this public key; undefined otherwise (mismatch is logged). */
function matchingCertificate(file: string, spki: Buffer, log: Logger | undefined): string | undefined {
  try {
    const pem = readFileSync(file, 'utf8');
    const cert = new X509Certificate(pem);
    if (Buffer.compare(cert.publicKey.export({ type: 'spki', format: 'der' }), spki) === 0) return pem;
    log?.warn({ cert: file }, 'mqtt.tls.cert does not belong to mqtt.tls.key: evidence packages go without a certificate');
  } catch {
    log?.warn({ cert: file }, 'mqtt.tls.cert unreadable: evidence packages go without a certificate');
  }
  return undefined;
}
