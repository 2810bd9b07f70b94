// The evidence package of a violation: what `<evidence dir>/<event id>/` holds, the manifest that lists it,
// the canonical JSON the manifest is written in and how it is signed. The writer on the box
// (inference/evidence/), the `evidence` command that hands a package out, `center evidence get` and `evidence
// verify` all use these definitions; verification itself is contract/evidence-verify.ts. docs/evidence.md
// explains the format for an authority that checks a package without our tools.
import { createHash, createPublicKey, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { z } from 'zod';

/** Format tag of the manifest; bumped on any incompatible change. */
export const EVIDENCE_FORMAT = 'roadside.evidence/1';
export const MANIFEST_FILE = 'manifest.json';
export const SIGNATURE_FILE = 'manifest.sig';
/** The signer's X.509 certificate (PEM: the box's mTLS client certificate), present when `signer.cert` is "present". */
export const SIGNER_CERT_FILE = 'cert.pem';
/** The files of a package besides the ones its manifest lists (the certificate may also be listed). */
export const PACKAGE_META_FILES = [MANIFEST_FILE, SIGNATURE_FILE, SIGNER_CERT_FILE] as const;
/** The signature scheme, as the manifest names it (`signer.algorithm`). */
export const SIGNATURE_ALGORITHM = 'ECDSA-P256-SHA256';
/** Largest manifest accepted (it lists a handful of files and a few hashes: a few KiB in practice). */
export const MANIFEST_MAX_BYTES = 32 * 1024;
/** Largest cert.pem accepted (a certificate is about 1 KiB): keeps the manifest answer small. */
export const SIGNER_CERT_MAX_BYTES = 16 * 1024;

/** An event id as a package directory name: a UUID, lowercase (the agent's ids are UUIDv7). */
export const EVENT_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** A file name inside a package: one path level, no leading dot, no separators, so it can never leave it. */
export const EVIDENCE_FILE_PATTERN = /^[a-z0-9][a-z0-9._-]{0,99}$/;

const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);
export const EvidenceEventId = z.string().regex(EVENT_ID_PATTERN, 'expected a lowercase UUID').describe('Event id (UUID): the package directory name');
export const EvidenceFileName = z
  .string()
  .regex(EVIDENCE_FILE_PATTERN, 'expected a file name of lowercase letters, digits, ".", "_" and "-" (at most 100 characters)')
  .describe('File name inside the package');

/** One file of a package, as its manifest lists it. */
export const EvidenceFile = z
  .strictObject({
    name: EvidenceFileName,
    sha256: Sha256Hex.describe('SHA-256 of the file bytes, hex'),
    bytes: z.int().min(0).describe('File size, bytes'),
  })
  .describe('A file of the package');
export type EvidenceFile = z.infer<typeof EvidenceFile>;

export const EvidenceSigner = z
  .looseObject({
    algorithm: z.literal(SIGNATURE_ALGORITHM).describe('The signature scheme'),
    key_id: Sha256Hex.describe('SHA-256 (hex) of the DER SubjectPublicKeyInfo of the signing key'),
    key_source: z
      .enum(['sign_key', 'mqtt_tls', 'generated'])
      .optional()
      .describe('Where the box key comes from: analytics.evidence.sign_key, the mTLS client key, or generated in the data dir'),
    cert: z.enum(['present', 'absent']).describe(`present: the package carries the signer's X.509 certificate as ${SIGNER_CERT_FILE}`),
    public_key: z.string().optional().describe('The signing public key, SPKI PEM: checks the signature, but proves no origin by itself'),
  })
  .describe('Who signed manifest.json (ECDSA P-256 / SHA-256, DER signature in manifest.sig)');

/**
 * The manifest, as the writer (inference/evidence/manifest.ts) makes it. The keys checked here are the ones
 * verification and delivery rely on; the rest (the event, rule, times, clip, stills, plate, config and model
 * hashes) is the writer's and is covered by the signature like everything else.
 */
export const EvidenceManifest = z
  .looseObject({
    schema: z.literal(EVIDENCE_FORMAT).describe('Manifest format'),
    package_id: EvidenceEventId.describe('The package: the violation event id, also the package directory name'),
    device: z.looseObject({ id: z.string().min(1), site: z.string().min(1) }).describe('The box'),
    camera: z.looseObject({ id: z.string().min(1) }).describe('The camera'),
    files: z
      .array(EvidenceFile)
      .min(1)
      .refine((fs) => new Set(fs.map((f) => f.name)).size === fs.length, 'file names must be unique')
      .refine((fs) => fs.every((f) => f.name !== MANIFEST_FILE && f.name !== SIGNATURE_FILE), `${MANIFEST_FILE} and ${SIGNATURE_FILE} cannot be listed in files`)
      .describe(`Every file of the package except ${MANIFEST_FILE} and ${SIGNATURE_FILE} (${SIGNER_CERT_FILE} may be listed)`),
    signer: EvidenceSigner,
  })
  .describe('manifest.json of an evidence package (canonical JSON)');
export type EvidenceManifest = z.infer<typeof EvidenceManifest>;

/**
 * Canonical JSON (the JSON Canonicalization Scheme, RFC 8785, for the values we write): object keys sorted by
 * UTF-16 code units, no insignificant whitespace, strings and numbers as ECMAScript's JSON.stringify writes them.
 * The same value always gives the same bytes, so a signature over them can be checked against a re-encoding.
 * Keys whose value is undefined are left out (as JSON.stringify does); non-finite numbers, bigints, functions
 * and objects other than plain ones and arrays are refused.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON has no ${value}`);
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v: unknown) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw new TypeError('canonical JSON takes plain objects and arrays only');
      const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
      entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON has no ${typeof value}`);
  }
}

/** The exact manifest.json bytes of a manifest. */
export function manifestBytes(manifest: EvidenceManifest): Buffer {
  return Buffer.from(canonicalJson(manifest), 'utf8');
}

/** key_id of a public key: SHA-256 of its DER SubjectPublicKeyInfo, hex (`openssl pkey -pubin -outform DER | sha256sum`). */
export function keyIdOf(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('hex');
}

/** The manifest.sig of manifest bytes: ECDSA P-256 over their SHA-256, DER encoded (what `openssl dgst -sha256 -sign` writes). */
export function signManifest(bytes: Uint8Array, privateKey: KeyObject): Buffer {
  assertP256(privateKey);
  return sign('sha256', bytes, { key: privateKey, dsaEncoding: 'der' });
}

/** Throws unless `key` is an EC key on P-256 (prime256v1), the only curve of the format. */
export function assertP256(key: KeyObject): void {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new TypeError(`expected an ECDSA P-256 key, got ${key.asymmetricKeyType ?? 'a secret key'}${key.asymmetricKeyDetails?.namedCurve ? ` on ${key.asymmetricKeyDetails.namedCurve}` : ''}`);
  }
}

/** A verification key: from an X.509 certificate or a public key (PEM or DER), with its key_id. */
export interface SignerKey {
  key: KeyObject;
  key_id: string;
  /** What it was read from. */
  kind: 'certificate' | 'public key';
  /** The certificate's subject, when read from one. */
  subject?: string;
}

/** Reads a verification key from certificate or public key bytes; throws a TypeError saying what it got. */
export function signerKeyFrom(data: Buffer | string): SignerKey {
  let key: KeyObject;
  let kind: SignerKey['kind'] = 'certificate';
  let subject: string | undefined;
  try {
    const cert = new X509Certificate(data);
    key = cert.publicKey;
    subject = cert.subject.replace(/\n/g, ', ');
  } catch {
    kind = 'public key';
    // createPublicKey would take a private key too (and derive its public half): a private key does not belong here.
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(data.toString())) throw new TypeError('a private key: give the certificate or the public key');
    try {
      key = typeof data === 'string' || data.subarray(0, 11).toString('latin1') === '-----BEGIN ' ? createPublicKey(data) : createPublicKey({ key: data, format: 'der', type: 'spki' });
    } catch {
      throw new TypeError('neither an X.509 certificate nor a public key (PEM or DER)');
    }
  }
  assertP256(key);
  return { key, key_id: keyIdOf(key), kind, ...(subject ? { subject } : {}) };
}

// ---------------------------------------------------------------------------------------------------------
// The `evidence` command (catalogue: contract/commands.ts; handler: agent/commands/evidence.ts)

/**
 * Largest chunk of one `evidence` answer, bytes of file data. Base64 makes it 64 KiB, and the answer stays under
 * 66 KiB: below the 128 KiB message limit of hosted brokers (AWS IoT Core) and far below mosquitto's defaults.
 */
export const EVIDENCE_CHUNK_MAX_BYTES = 48 * 1024;
/**
 * Default rate of the bytes the agent hands out as evidence, bytes/s (a token bucket). About 1.4 Mbit/s on the
 * wire with base64 and MQTT framing: a fetch shares a cellular uplink with live events and leaves them room.
 */
export const EVIDENCE_RATE_BYTES_S = 128 * 1024;

export const EvidenceArgs = z
  .strictObject({
    event_id: EvidenceEventId,
    file: EvidenceFileName.optional().describe('A file listed in the manifest. Absent: the manifest, its signature and the file list'),
    offset: z.int().min(0).optional().describe('First byte of the chunk (with file). Default 0; the file size gives an empty last chunk'),
    length: z.int().min(1).max(EVIDENCE_CHUNK_MAX_BYTES).optional().describe(`Bytes wanted (with file), at most ${EVIDENCE_CHUNK_MAX_BYTES}. Default ${EVIDENCE_CHUNK_MAX_BYTES}`),
  })
  .refine((a) => a.file !== undefined || (a.offset === undefined && a.length === undefined), { message: 'offset and length go with file', path: ['offset'] })
  .describe('evidence: the manifest of an evidence package, or one chunk of one of its files');

const EvidencePackageResult = z
  .strictObject({
    event_id: EvidenceEventId,
    manifest_base64: z.string().describe('The exact manifest.json bytes (canonical JSON), base64: the signature covers these bytes'),
    signature_base64: z.string().describe('manifest.sig, base64: ECDSA P-256 / SHA-256, DER'),
    cert_pem: z.string().nullable().describe('cert.pem, the signer\'s X.509 certificate, when the package carries one'),
    files: z.array(EvidenceFile).describe('The files of the package (as the manifest lists them)'),
    acknowledged: z.boolean().describe('Every file has been fetched to its end (by anyone, since the agent started)'),
  })
  .describe('Without file: the package');

const EvidenceChunkResult = z
  .strictObject({
    event_id: EvidenceEventId,
    file: EvidenceFileName,
    offset: z.int().min(0).describe('First byte of the chunk'),
    length: z.int().min(0).describe('Bytes in this chunk (0 at the end of the file)'),
    total: z.int().min(0).describe('File size'),
    sha256: Sha256Hex.describe('SHA-256 of this chunk\'s bytes, hex'),
    data_base64: z.string().describe('The chunk, base64'),
    acknowledged: z.boolean().describe('This answer completed the package: every file has now been fetched to its end'),
  })
  .describe('With file: one chunk');

export const EvidenceResult = z.union([EvidencePackageResult, EvidenceChunkResult]);
export type EvidencePackageResult = z.infer<typeof EvidencePackageResult>;
export type EvidenceChunkResult = z.infer<typeof EvidenceChunkResult>;
