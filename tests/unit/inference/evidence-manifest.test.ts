// Evidence manifests: the signing key (configured, the mTLS key with its certificate, or generated once in the
// data dir; canonical JSON is contract/evidence.ts's, tested there), and box mapping to the pictures.
import { X509Certificate, createHash, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { letterboxGeometry } from '../../../ingest/ffmpeg-args.js';
import { canonicalJson } from '../../../contract/evidence.js';
import { boxIn, regionAround } from '../../../inference/evidence/geometry.js';
import { EvidenceSigner, GENERATED_KEY_FILE } from '../../../inference/evidence/signer.js';
import { makeCerts, type TestCerts } from '../../../testkit/certs.js';

let tmp: string;
let certs: TestCerts;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'evidence-manifest-'));
  certs = await makeCerts(path.join(tmp, 'pki'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const keyId = (pem: string) => createHash('sha256').update(createPublicKey(pem).export({ type: 'spki', format: 'der' })).digest('hex');
const verifyManifest = (data: Uint8Array, sig: Uint8Array, pem: string) => verify('sha256', data, { key: createPublicKey(pem), dsaEncoding: 'der' }, sig);

describe('evidence signer', () => {
  it('generates a P-256 key in the data dir on first use (0600), reuses it, and says so', () => {
    const dataDir = path.join(tmp, 'gen');
    fs.mkdirSync(dataDir);
    const s1 = new EvidenceSigner({ data_dir: dataDir });
    const info = s1.info();
    expect(info).toMatchObject({ algorithm: 'ECDSA-P256-SHA256', key_source: 'generated', cert: 'absent' });
    const file = path.join(dataDir, GENERATED_KEY_FILE);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(info.key_id).toBe(keyId(info.public_key));
    const data = Buffer.from(canonicalJson({ event: 'x' }));
    const sig = s1.sign(data);
    expect(sig[0]).toBe(0x30); // DER SEQUENCE
    expect(verifyManifest(data, sig, info.public_key)).toBe(true);
    expect(verifyManifest(Buffer.from('{"event":"y"}'), sig, info.public_key)).toBe(false);
    // A second signer (the agent restarted) finds the same key.
    expect(new EvidenceSigner({ data_dir: dataDir }).info().key_id).toBe(info.key_id);
  });

  it("signs with the mTLS client key and ships its certificate when they belong together", () => {
    const s = new EvidenceSigner({ tls: { key: certs.clientKey, cert: certs.clientCert }, data_dir: path.join(tmp, 'unused') });
    const info = s.info();
    expect(info).toMatchObject({ key_source: 'mqtt_tls', cert: 'present' });
    expect(s.certificate()).toBe(fs.readFileSync(certs.clientCert, 'utf8'));
    const certKey = new X509Certificate(fs.readFileSync(certs.clientCert)).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(info.key_id).toBe(keyId(certKey));
    expect(fs.existsSync(path.join(tmp, 'unused', GENERATED_KEY_FILE))).toBe(false);
    // A certificate of another key is left out.
    const other = new EvidenceSigner({ tls: { key: certs.clientKey, cert: certs.serverCert }, data_dir: tmp });
    expect(other.info()).toMatchObject({ key_source: 'mqtt_tls', cert: 'absent' });
    expect(other.certificate()).toBeUndefined();
  });

  it('prefers evidence.sign_key; refuses one that is not EC P-256; an RSA mTLS key falls back to a generated key', () => {
    const configured = new EvidenceSigner({ sign_key: certs.serverKey, tls: { key: certs.clientKey }, data_dir: tmp });
    expect(configured.info().key_source).toBe('sign_key');
    const rsa = path.join(tmp, 'rsa.key');
    fs.writeFileSync(rsa, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    expect(() => new EvidenceSigner({ sign_key: rsa, data_dir: tmp }).info()).toThrow(expect.objectContaining({ code: 'EVIDENCE_SIGN_KEY' }));
    const dataDir = path.join(tmp, 'rsa-fallback');
    fs.mkdirSync(dataDir);
    expect(new EvidenceSigner({ tls: { key: rsa }, data_dir: dataDir }).info().key_source).toBe('generated');
  });
});

describe('vehicle box mapping', () => {
  it('maps camera pixels to the full-resolution frame, and into a letterboxed detector frame', () => {
    const cam = { width: 1280, height: 720 };
    expect(boxIn([100, 100, 200, 300], cam, { width: 1920, height: 1080 })).toEqual([150, 150, 300, 450]);
    expect(boxIn([100, 100, 200, 300], cam, { width: 416, height: 416 })).toEqual([32.5, 100 * (416 / 720), 65, 300 * (416 / 720)]);
    const g = letterboxGeometry(1280, 720, 416, 416);
    expect(g).toMatchObject({ scale: 0.325, pad_x: 0, pad_y: 91 });
    const lb = boxIn([100, 100, 200, 300], cam, { width: 416, height: 416 }, g);
    expect(lb).toEqual([32.5, 100 * 0.325 + 91, 65, 300 * 0.325 + 91]);
    // Exactly what the detector's postprocess undoes: (x - pad) / scale.
    expect(lb.map((v, i) => (v - (i % 2 ? g.pad_y : g.pad_x)) / g.scale)).toEqual([100, 100, 200, 300]);
  });

  it('grows the crop by the margin and clamps it to the picture', () => {
    expect(regionAround([100, 100, 200, 200], { width: 1280, height: 720 })).toEqual({ left: 85, top: 85, width: 130, height: 130 });
    expect(regionAround([-50, -50, 20, 20], { width: 100, height: 100 })).toEqual({ left: 0, top: 0, width: 31, height: 31 });
    const r = regionAround([1270, 700, 1300, 760], { width: 1280, height: 720 });
    expect(r.left + r.width).toBeLessThanOrEqual(1280);
    expect(r.top + r.height).toBeLessThanOrEqual(720);
  });
});
