// The evidence package format (contract/evidence.ts) and its verification (contract/evidence-verify.ts,
// `evidence verify`): canonical JSON is stable, a package signed with a P-256 key verifies, and any change
// (one byte of any file, of the manifest or of the signature, a missing file, another key) fails and is named.
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import { readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { evidenceVerify } from '../../../cli/evidence-verify.js';
import { COMMANDS } from '../../../contract/commands.js';
import {
  canonicalJson,
  EVIDENCE_CHUNK_MAX_BYTES,
  keyIdOf,
  MANIFEST_FILE,
  manifestBytes,
  SIGNATURE_FILE,
  signManifest,
  signerKeyFrom,
} from '../../../contract/evidence.js';
import { verifyEvidencePackage } from '../../../contract/evidence-verify.js';
import { EvidenceSigner } from '../../../inference/evidence/signer.js';
import type { CliIo } from '../../../core/cli-io.js';
import { makeCerts, type TestCerts } from '../../../testkit/certs.js';
import { certSigner, p256Signer, PACKAGE_FILES, writeTestPackage, type TestSigner } from '../../../testkit/evidence-packages.js';
import { makeTempDir } from '../../../testkit/tmp.js';

function capture(): CliIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env: {}, interactive: false, out: () => out, err: () => err };
}

/** Flips the low bit of the byte at `at` (default: the middle). */
function flipByte(file: string, at?: number): void {
  const b = readFileSync(file);
  const i = at ?? Math.floor(b.length / 2);
  b[i] = b[i]! ^ 0x01;
  writeFileSync(file, b);
}

describe('canonical JSON', () => {
  it('sorts keys by UTF-16 code units at every level and writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: 2, A: 3, aa: 4, é: 5, '\u{1F600}': 6, ['\uFB01']: 7 })).toBe('{"A":3,"a":2,"aa":4,"b":1,"é":5,"\u{1F600}":6,"\uFB01":7}');
    expect(canonicalJson({ z: [3, { y: true, x: null }], a: { c: 'x', b: [] } })).toBe('{"a":{"b":[],"c":"x"},"z":[3,{"x":null,"y":true}]}');
  });

  it('writes numbers and strings as ECMAScript does (RFC 8785)', () => {
    expect(canonicalJson([1.0, -0, 1e21, 1e-7, 0.1, 123.456, 2 ** 53])).toBe('[1,0,1e+21,1e-7,0.1,123.456,9007199254740992]');
    expect(canonicalJson('tab\there "q" \\ \u0007 é \u2028')).toBe('"tab\\there \\"q\\" \\\\ \\u0007 é \u2028"');
  });

  it('gives the same bytes whatever order the keys were set in, and survives a parse round trip', () => {
    const a = { files: [{ size: 1, name: 'a.jpg', sha256: 'f'.repeat(64) }], event_id: 'e', plate: null, time: { wall: 'w', monotonic_ms: 1.5 } };
    const b = { time: { monotonic_ms: 1.5, wall: 'w' }, plate: null, event_id: 'e', files: [{ sha256: 'f'.repeat(64), name: 'a.jpg', size: 1 }] };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(canonicalJson(JSON.parse(canonicalJson(a)))).toBe(canonicalJson(a));
    // A golden value: the serialisation may never change under a signed manifest.
    expect(canonicalJson(a)).toBe('{"event_id":"e","files":[{"name":"a.jpg","sha256":"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff","size":1}],"plate":null,"time":{"monotonic_ms":1.5,"wall":"w"}}');
  });

  it('leaves out undefined keys and refuses what JSON cannot carry exactly', () => {
    expect(canonicalJson({ a: undefined, b: 1 })).toBe('{"b":1}');
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, 10n, new Date(0), new Map(), () => 1]) expect(() => canonicalJson({ v: bad })).toThrow(TypeError);
  });
});

describe('the evidence command in the catalogue', () => {
  const args = COMMANDS.evidence.args;
  const id = randomUUID();
  it('accepts a manifest request and bounded chunk requests', () => {
    expect(args.safeParse({ event_id: id }).success).toBe(true);
    expect(args.safeParse({ event_id: id, file: 'clip.mp4', offset: 0, length: EVIDENCE_CHUNK_MAX_BYTES }).success).toBe(true);
  });
  it.each([
    ['an event id that is not a UUID', { event_id: '../../etc' }],
    ['an upper-case UUID', { event_id: id.toUpperCase() }],
    ['a path in file', { event_id: id, file: '../manifest.json' }],
    ['an absolute file', { event_id: id, file: '/etc/passwd' }],
    ['a hidden file', { event_id: id, file: '.ssh' }],
    ['a chunk over the bound', { event_id: id, file: 'clip.mp4', length: EVIDENCE_CHUNK_MAX_BYTES + 1 }],
    ['a negative offset', { event_id: id, file: 'clip.mp4', offset: -1 }],
    ['an offset without file', { event_id: id, offset: 5 }],
    ['an unknown key', { event_id: id, path: '/etc/passwd' }],
  ])('refuses %s', (_what, req) => {
    expect(args.safeParse(req).success).toBe(false);
  });
});

describe('evidence verify', () => {
  let root: string;
  let signer: TestSigner;
  let other: TestSigner;
  let certs: TestCerts;
  let device: TestSigner;
  let pubFile: string;
  let otherPubFile: string;

  beforeAll(async () => {
    root = makeTempDir('evidence-unit');
    signer = p256Signer();
    other = p256Signer();
    certs = await makeCerts();
    device = certSigner(certs.clientCert, certs.clientKey);
    pubFile = join(root, 'signer-pub.pem');
    otherPubFile = join(root, 'other-pub.pem');
    writeFileSync(pubFile, signer.publicPem);
    writeFileSync(otherPubFile, other.publicPem);
  });

  it('verifies a package signed with the key whose public half is given, naming every file', async () => {
    const pkg = writeTestPackage(root, signer);
    const r = await verifyEvidencePackage(pkg.dir, { key: signerKeyFrom(signer.publicPem) });
    expect(r.problems).toEqual([]);
    expect(r.signature).toMatchObject({ state: 'valid', source: 'given', key_id: keyIdOf(signer.publicKey) });
    expect(r.files.map((f) => [f.name, f.ok])).toEqual(Object.keys(PACKAGE_FILES).sort().map((n) => [n, true]));
    expect(r.ok).toBe(true);
    const io = capture();
    expect(await evidenceVerify({ dir: pkg.dir, cert: pubFile }, io)).toBe(0);
    for (const name of Object.keys(PACKAGE_FILES)) expect(io.out()).toMatch(new RegExp(`^${name.replace('.', '\\.')}\\s+ok$`, 'm'));
    expect(io.out()).toContain('verified: signature valid, 6 files intact');
  });

  it("interoperates with the box's signer (inference/evidence): its key id and its signature of the canonical manifest verify here", async () => {
    const boxSigner = new EvidenceSigner({ data_dir: makeTempDir('evidence-writer') });
    const info = boxSigner.info();
    const boxKey = signerKeyFrom(info.public_key);
    expect(info.key_id).toBe(boxKey.key_id);
    const pkg = writeTestPackage(root, { ...signer, publicKey: boxKey.key, publicPem: info.public_key });
    const theirs = Buffer.from(canonicalJson(pkg.manifest));
    expect(theirs.equals(manifestBytes(pkg.manifest))).toBe(true);
    writeFileSync(join(pkg.dir, MANIFEST_FILE), theirs);
    writeFileSync(join(pkg.dir, SIGNATURE_FILE), boxSigner.sign(theirs));
    const r = await verifyEvidencePackage(pkg.dir, { key: boxKey });
    expect(r.signature).toMatchObject({ state: 'valid', key_id: info.key_id });
    expect(r.ok).toBe(true);
  });

  it('the signature is the one openssl checks: `openssl dgst -sha256 -verify pub.pem -signature manifest.sig manifest.json`', () => {
    const pkg = writeTestPackage(root, signer);
    const out = execFileSync('openssl', ['dgst', '-sha256', '-verify', pubFile, '-signature', join(pkg.dir, SIGNATURE_FILE), join(pkg.dir, MANIFEST_FILE)], { encoding: 'utf8' });
    expect(out.trim()).toBe('Verified OK');
    // key_id is the sha256 of the DER SubjectPublicKeyInfo, as openssl computes it
    const der = execFileSync('openssl', ['pkey', '-pubin', '-in', pubFile, '-outform', 'DER']);
    expect(pkg.manifest.signer.key_id).toBe(execFileSync('sha256sum', { input: der, encoding: 'utf8' }).split(' ')[0]);
  });

  for (const name of Object.keys(PACKAGE_FILES)) {
    it(`fails on one flipped byte of ${name}, and names it`, async () => {
      const pkg = writeTestPackage(root, signer);
      flipByte(join(pkg.dir, name));
      const io = capture();
      expect(await evidenceVerify({ dir: pkg.dir, cert: pubFile }, io)).toBe(1);
      expect(io.err()).toMatch(new RegExp(`^${name.replace('.', '\\.')}\\s+FAILED: sha256 [0-9a-f]{64}, the manifest says ${pkg.manifest.files.find((f) => f.name === name)?.sha256}`, 'm'));
      expect(io.err()).toContain(`verification FAILED (${name})`);
      // the other files are still reported intact
      expect(io.err().match(/\s+ok$/gm)).toHaveLength(Object.keys(PACKAGE_FILES).length - 1);
    });
  }

  it('fails on a flipped byte anywhere in manifest.json (every position), naming the manifest or its signature', async () => {
    const pkg = writeTestPackage(root, signer, { files: { 'clip.mp4': 100 } });
    const original = readFileSync(join(pkg.dir, MANIFEST_FILE));
    const key = signerKeyFrom(signer.publicPem);
    for (let i = 0; i < original.length; i++) {
      flipByte(join(pkg.dir, MANIFEST_FILE), i);
      const r = await verifyEvidencePackage(pkg.dir, { key });
      expect(r.ok, `byte ${i}`).toBe(false);
      expect(r.problems.length > 0 || r.signature.state === 'invalid', `byte ${i}`).toBe(true);
      writeFileSync(join(pkg.dir, MANIFEST_FILE), original);
    }
    expect((await verifyEvidencePackage(pkg.dir, { key })).ok).toBe(true);
  });

  it('fails on a changed value in the manifest (still valid JSON): the signature no longer matches', async () => {
    const pkg = writeTestPackage(root, signer);
    const file = join(pkg.dir, MANIFEST_FILE);
    writeFileSync(file, readFileSync(file, 'utf8').replace('"text":"B-AB 1234"', '"text":"B-AB 1284"'));
    const io = capture();
    expect(await evidenceVerify({ dir: pkg.dir, cert: pubFile }, io)).toBe(1);
    expect(io.err()).toMatch(/^manifest\.sig\s+FAILED: manifest\.json does not match manifest\.sig/m);
    expect(io.err()).toContain('verification FAILED (manifest.sig)');
  });

  it('fails on a flipped byte of manifest.sig', async () => {
    const pkg = writeTestPackage(root, signer);
    flipByte(join(pkg.dir, SIGNATURE_FILE), 20);
    const io = capture();
    expect(await evidenceVerify({ dir: pkg.dir, cert: pubFile }, io)).toBe(1);
    expect(io.err()).toContain('verification FAILED (manifest.sig)');
  });

  it('fails for a package signed by another key, saying which key signed and which was given', async () => {
    const pkg = writeTestPackage(root, other);
    const io = capture();
    expect(await evidenceVerify({ dir: pkg.dir, cert: pubFile }, io)).toBe(1);
    expect(io.err()).toContain(`the manifest names key ${keyIdOf(other.publicKey)}, the public key given is key ${keyIdOf(signer.publicKey)}`);
  });

  it('fails when a file was altered and the manifest re-signed by another key (key_id updated too)', async () => {
    const pkg = writeTestPackage(root, signer);
    writeFileSync(join(pkg.dir, 'plate.jpg'), Buffer.from('forged'));
    const sha = createHash('sha256').update('forged').digest('hex');
    const files = pkg.manifest.files.map((f) => (f.name === 'plate.jpg' ? { ...f, bytes: 6, sha256: sha } : f));
    const forged = { ...pkg.manifest, files, signer: { ...pkg.manifest.signer, key_id: keyIdOf(other.publicKey), public_key: other.publicPem } };
    const bytes = manifestBytes(forged);
    writeFileSync(join(pkg.dir, MANIFEST_FILE), bytes);
    writeFileSync(join(pkg.dir, SIGNATURE_FILE), signManifest(bytes, other.privateKey));
    const r = await verifyEvidencePackage(pkg.dir, { key: signerKeyFrom(signer.publicPem) });
    expect(r.ok).toBe(false);
    expect(r.signature.state).toBe('invalid');
    expect(r.files.every((f) => f.ok)).toBe(true); // the files match the forged manifest: only the signature tells
  });

  it('fails for a missing file and names it', async () => {
    const pkg = writeTestPackage(root, signer);
    rmSync(join(pkg.dir, 'still-after.jpg'));
    const io = capture();
    expect(await evidenceVerify({ dir: pkg.dir, cert: pubFile }, io)).toBe(1);
    expect(io.err()).toMatch(/^still-after\.jpg\s+FAILED: missing$/m);
  });

  it('refuses a file replaced by a symlink, and reports files that are not part of the package', async () => {
    const pkg = writeTestPackage(root, signer, { files: { 'a.jpg': 10, 'b.jpg': 10 } });
    const copy = join(root, `${pkg.eventId}-a.jpg`);
    writeFileSync(copy, pkg.files.get('a.jpg')!);
    rmSync(join(pkg.dir, 'a.jpg'));
    symlinkSync(copy, join(pkg.dir, 'a.jpg'));
    writeFileSync(join(pkg.dir, 'notes.txt'), 'x');
    const r = await verifyEvidencePackage(pkg.dir, { key: signerKeyFrom(signer.publicPem) });
    expect(r.files).toEqual([{ name: 'a.jpg', ok: false, problem: 'not a regular file' }, { name: 'b.jpg', ok: true }]);
    expect(r.extra).toEqual(['notes.txt']);
  });

  it('without --cert, the public key in the manifest shows the package intact but proves no origin: exit 1', async () => {
    const pkg = writeTestPackage(root, signer);
    const own = await verifyEvidencePackage(pkg.dir);
    expect(own.signature).toMatchObject({ state: 'intact', source: 'manifest', key_id: keyIdOf(signer.publicKey) });
    expect(own.files.every((f) => f.ok)).toBe(true);
    const io = capture();
    expect(await evidenceVerify({ dir: pkg.dir }, io)).toBe(1);
    expect(io.err()).toContain(`but that proves no origin: compare key id ${keyIdOf(signer.publicKey)} with the key registered for the device (key_source generated), or give --cert`);
    expect(io.err()).toContain('every file matches the signed manifest, but who signed it is NOT proven');
  });

  it('why a key the package brings proves nothing: a forger swaps files, key and signature; only --cert catches it', async () => {
    const pkg = writeTestPackage(root, signer);
    const forged = writeTestPackage(root, other, { files: Object.fromEntries([...pkg.files.keys()].map((n) => [n, 100])) });
    // The forger's package is self-consistent: intact under its own key.
    expect((await verifyEvidencePackage(forged.dir)).signature.state).toBe('intact');
    const io = capture();
    expect(await evidenceVerify({ dir: forged.dir, cert: pubFile }, io)).toBe(1);
    expect(io.err()).toContain('verification FAILED (manifest.sig)');
  });

  it("fails when the manifest's public key is not the key it names", async () => {
    const pkg = writeTestPackage(root, signer, { files: { 'a.jpg': 5 } });
    const bent = { ...pkg.manifest, signer: { ...pkg.manifest.signer, public_key: other.publicPem } };
    const bytes = manifestBytes(bent);
    writeFileSync(join(pkg.dir, MANIFEST_FILE), bytes);
    writeFileSync(join(pkg.dir, SIGNATURE_FILE), signManifest(bytes, other.privateKey));
    const r = await verifyEvidencePackage(pkg.dir);
    expect(r.signature.state).toBe('invalid');
    expect(r.signature.detail).toBe(`signed by key ${keyIdOf(other.publicKey)}, but the manifest names key ${keyIdOf(signer.publicKey)}`);
  });

  it('without --cert and with no key in the package at all: the signature could not be checked, exit 1', async () => {
    const pkg = writeTestPackage(root, signer, { withPublicKey: false });
    const io = capture();
    expect(await evidenceVerify({ dir: pkg.dir }, io)).toBe(1);
    expect(io.err()).toContain('every file matches the manifest, but the signature could NOT be checked');
    expect(io.err()).toContain(keyIdOf(signer.publicKey));
  });

  it('with the certificate in the package (cert.pem): intact alone, valid when --ca proves the issuer; another CA fails', async () => {
    const pkg = writeTestPackage(root, device, { withCert: true });
    const own = await verifyEvidencePackage(pkg.dir);
    expect(own.signature).toMatchObject({ state: 'intact', source: 'certificate', subject: 'CN=test-device' });
    expect(own.signature.detail).toContain('check that certificate against the fleet CA (--ca FILE, or: openssl verify -CAfile ca.pem cert.pem)');
    let io = capture();
    expect(await evidenceVerify({ dir: pkg.dir, ca: certs.caFile }, io)).toBe(0);
    expect(io.out()).toContain('issued by the CA given');
    io = capture();
    expect(await evidenceVerify({ dir: pkg.dir, ca: certs.otherCaFile }, io)).toBe(1);
    expect(io.err()).toContain('was not issued by the CA given (CN=unrelated test CA)');
    // The device certificate itself as --cert
    io = capture();
    expect(await evidenceVerify({ dir: pkg.dir, cert: certs.clientCert }, io)).toBe(0);
    // A package whose cert.pem was swapped for another certificate (re-signing needs that certificate's key)
    writeFileSync(join(pkg.dir, 'cert.pem'), readFileSync(certs.caFile));
    expect((await verifyEvidencePackage(pkg.dir, { ca: new X509Certificate(readFileSync(certs.caFile)) })).signature.state).toBe('invalid');
  });

  it('usage errors: an unreadable --cert or --ca, a private key as --cert (exit 64)', async () => {
    const pkg = writeTestPackage(root, signer, { files: { 'a.jpg': 1 } });
    const keyFile = join(root, 'private.pem');
    writeFileSync(keyFile, signer.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    for (const args of [{ cert: join(root, 'nope.pem') }, { cert: keyFile }, { cert: join(pkg.dir, 'a.jpg') }, { ca: pubFile }]) {
      const io = capture();
      expect(await evidenceVerify({ dir: pkg.dir, ...args }, io)).toBe(64);
      expect(io.err()).toMatch(/^roadside-agent evidence verify: --(cert|ca) /);
    }
  });

  it('a directory without a package, and a manifest that is not canonical JSON, fail clearly', async () => {
    const io = capture();
    expect(await evidenceVerify({ dir: root, cert: pubFile }, io)).toBe(1);
    expect(io.err()).toContain('manifest.json: missing');
    const pkg = writeTestPackage(root, signer, { files: { 'a.jpg': 3 } });
    const pretty = Buffer.from(JSON.stringify(pkg.manifest, null, 2));
    writeFileSync(join(pkg.dir, MANIFEST_FILE), pretty);
    writeFileSync(join(pkg.dir, SIGNATURE_FILE), signManifest(pretty, signer.privateKey));
    const r = await verifyEvidencePackage(pkg.dir, { key: signerKeyFrom(signer.publicPem) });
    expect(r.signature.state).toBe('valid');
    expect(r.problems).toEqual(['manifest.json: not canonical JSON (sorted keys, no whitespace): not written by the agent']);
    expect(r.ok).toBe(false);
  });
});
