// Evidence packages for tests (format: contract/evidence.ts), signed with a key the test holds: random file
// bytes of chosen sizes, a manifest in canonical JSON and its ECDSA P-256 signature, optionally the signer's
// certificate as cert.pem and its public key in the manifest (as the box's writer, inference/evidence/, does).
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  EvidenceManifest,
  keyIdOf,
  MANIFEST_FILE,
  manifestBytes,
  SIGNATURE_FILE,
  SIGNATURE_ALGORITHM,
  SIGNER_CERT_FILE,
  signManifest,
} from '../contract/evidence.js';
import { MANIFEST_SCHEMA, type Manifest } from '../inference/evidence/manifest.js';
import type { SignerInfo } from '../inference/evidence/signer.js';

/** The files of a violation package and test sizes for them, bytes. */
export const PACKAGE_FILES: Record<string, number> = {
  'clip.mp4': 400_000,
  'still-before.jpg': 30_000,
  'still-at.jpg': 31_000,
  'still-after.jpg': 29_500,
  'vehicle.jpg': 12_000,
  'plate.jpg': 3_100,
};

export interface TestSigner {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** SubjectPublicKeyInfo PEM. */
  publicPem: string;
  /** An X.509 certificate of the key, PEM, when made from one. */
  certPem?: string;
}

/** A fresh P-256 key pair. */
export function p256Signer(): TestSigner {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privateKey, publicKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** A signer from a certificate and its key file (testkit/certs.ts: clientCert / clientKey). */
export function certSigner(certFile: string, keyFile: string): TestSigner {
  const privateKey = createPrivateKey(readFileSync(keyFile));
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), certPem: readFileSync(certFile, 'utf8') };
}

export interface TestPackage {
  /** The package directory, `<root>/<eventId>`. */
  dir: string;
  eventId: string;
  manifest: EvidenceManifest;
  /** The bytes of every listed file. */
  files: Map<string, Buffer>;
}

export interface PackageOptions {
  eventId?: string;
  /** File name → size (random bytes) or content. Default PACKAGE_FILES. */
  files?: Record<string, number | Buffer>;
  /** Put the signer's certificate in the package as cert.pem (signer.cert "present"). Needs `signer.certPem`. */
  withCert?: boolean;
  /** Put the public key in the manifest (signer.public_key, as the box's writer does). Default true. */
  withPublicKey?: boolean;
}

/** Writes and signs a package under `root`. */
export function writeTestPackage(root: string, signer: TestSigner, o: PackageOptions = {}): TestPackage {
  const eventId = o.eventId ?? randomUUID();
  const dir = join(root, eventId);
  mkdirSync(dir, { recursive: true });
  const files = new Map<string, Buffer>();
  for (const [name, spec] of Object.entries(o.files ?? PACKAGE_FILES)) {
    const data = typeof spec === 'number' ? randomBytes(spec) : spec;
    writeFileSync(join(dir, name), data);
    files.set(name, data);
  }
  const withCert = o.withCert === true;
  if (withCert) {
    if (!signer.certPem) throw new Error('withCert needs a signer made from a certificate');
    writeFileSync(join(dir, SIGNER_CERT_FILE), signer.certPem);
  }
  const fileList = [...files].map(([name, data]) => ({ name, sha256: createHash('sha256').update(data).digest('hex'), bytes: data.length }));
  if (withCert) fileList.push({ name: SIGNER_CERT_FILE, sha256: createHash('sha256').update(signer.certPem!).digest('hex'), bytes: Buffer.byteLength(signer.certPem!) });
  fileList.sort((a, b) => (a.name < b.name ? -1 : 1));
  const signerInfo: SignerInfo = {
    algorithm: SIGNATURE_ALGORITHM,
    key_id: keyIdOf(signer.publicKey),
    key_source: withCert ? 'mqtt_tls' : 'generated',
    cert: withCert ? 'present' : 'absent',
    public_key: signer.publicPem,
  };
  // The writer's manifest type (inference/evidence/manifest.ts): the contract must accept what the box writes.
  const full: Manifest = {
    schema: MANIFEST_SCHEMA,
    package_id: eventId,
    created_at: '2026-11-26T12:00:09.120Z',
    agent_version: '0.1.0',
    device: { id: 'box-0042', site: 'a7-north' },
    camera: { id: 'cam1', frame: { width: 1920, height: 1080 } },
    event: { type: 'red_light', id: eventId, captured_at: '2026-11-26T12:00:03.250Z' },
    rule: { kind: 'signal', id: 'stop-nb', parameters: { signal: 'sig-1', min_red_ms: 500 } },
    time: { violation_at: '2026-11-26T12:00:03.250Z', wall_ms: 1_795_694_403_250, mono_ms: 81_234_567.5, mono_clock: 'agent', clock_synced: true },
    recording: { source: 'ring', width: 1920, height: 1080 },
    clip: {
      file: 'clip.mp4',
      requested: { start_offset_s: -5, end_offset_s: 5 },
      start: { offset_s: -5.2, at: '2026-11-26T11:59:58.050Z' },
      end: { offset_s: 5, at: '2026-11-26T12:00:08.250Z' },
      duration_s: 10.2,
    },
    stills: [{ role: 'at', file: 'still-at.jpg', requested_offset_s: 0, offset_s: 0.02, at: '2026-11-26T12:00:03.270Z' }],
    vehicle: { file: 'vehicle.jpg', box_camera_px: [10, 20, 200, 180], box_native_px: [25, 50, 500, 450] },
    plate: { text: 'B-AB 1234', confidence: 0.93, valid_format: true, votes: 4, reads: 5, file: 'plate.jpg' },
    calibration_sha256: 'c'.repeat(64),
    config: { hash: '9c2f41d07e3a5b18', camera_sha256: 'd'.repeat(64) },
    models: [{ role: 'detector', name: 'nanodet-m-416', sha256: 'a'.repeat(64) }],
    signer: signerInfo,
    files: fileList,
  };
  const { public_key: _dropped, ...keyless } = signerInfo;
  const manifest = EvidenceManifest.parse(o.withPublicKey === false ? { ...full, signer: keyless } : full);
  const bytes = manifestBytes(manifest);
  writeFileSync(join(dir, MANIFEST_FILE), bytes);
  writeFileSync(join(dir, SIGNATURE_FILE), signManifest(bytes, signer.privateKey));
  return { dir, eventId, manifest, files };
}
