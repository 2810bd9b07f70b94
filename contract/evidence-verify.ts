// Verification of an evidence package on disk (format: contract/evidence.ts): the signature of manifest.json,
// then every listed file's size and SHA-256. Shared by `evidence verify` (cli/) and `center evidence get`
// (center/), which may not import each other. Reads only; files are hashed as streams (a clip can be large).
import { createHash, verify as verifySignature, X509Certificate } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../core/errors.js';
import { formatIssues } from '../core/zod-issues.js';
import {
  canonicalJson,
  EvidenceManifest,
  MANIFEST_FILE,
  MANIFEST_MAX_BYTES,
  PACKAGE_META_FILES,
  SIGNATURE_FILE,
  SIGNER_CERT_FILE,
  SIGNER_CERT_MAX_BYTES,
  signerKeyFrom,
  type SignerKey,
} from './evidence.js';

export interface VerifyOptions {
  /** The signer's key from outside the package (a certificate or public key the authority trusts). */
  key?: SignerKey | undefined;
  /** CA certificate that must have issued the package's cert.pem (used when no `key` is given). */
  ca?: X509Certificate | undefined;
}

export interface FileCheck {
  name: string;
  ok: boolean;
  /** What is wrong, e.g. "sha256 3f…, the manifest says 9c…". */
  problem?: string;
}

export interface SignatureCheck {
  /**
   * valid: good under a key the caller trusts (--cert, or the package certificate issued by --ca); intact: good
   * under a key the package brings along (its certificate without --ca, or the manifest's public key), which proves
   * no origin; invalid: bad (or unreadable); unchecked: no key to check it with.
   */
  state: 'valid' | 'intact' | 'invalid' | 'unchecked';
  /** Where the key came from: given by the caller, the package's certificate, or the manifest's signer.public_key. */
  source?: 'given' | 'certificate' | 'manifest';
  key_id?: string;
  subject?: string;
  /** What the check proves, or why it failed or could not be made. */
  detail: string;
}

export interface VerifyReport {
  /** Every check passed and the signature is valid under a trusted key. */
  ok: boolean;
  manifest: EvidenceManifest | undefined;
  /** Problems of the package as a whole (manifest.json unreadable, not canonical, off the format). */
  problems: string[];
  signature: SignatureCheck;
  files: FileCheck[];
  /** Files in the directory that are not part of the package (not covered by the signature). */
  extra: string[];
}

/** Reads a regular file (never through a symlink), at most `max` bytes; undefined when it does not exist. */
async function readRegular(file: string, max: number): Promise<Buffer | undefined> {
  const st = await lstat(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!st) return undefined;
  if (!st.isFile()) throw new Error('not a regular file');
  if (st.size > max) throw new Error(`${st.size} bytes, more than the ${max} allowed`);
  return readFile(file);
}

/** SHA-256 (hex) and size of a file, streamed. */
export function hashFile(file: string): Promise<{ sha256: string; size: number }> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let size = 0;
    createReadStream(file)
      .on('data', (b) => {
        size += b.length; // a Buffer: no encoding is set
        h.update(b);
      })
      .on('error', reject)
      .on('end', () => resolve({ sha256: h.digest('hex'), size }));
  });
}

async function checkFile(dir: string, f: { name: string; sha256: string; bytes: number }): Promise<FileCheck> {
  const path = join(dir, f.name);
  const st = await lstat(path).catch(() => undefined);
  if (!st) return { name: f.name, ok: false, problem: 'missing' };
  if (!st.isFile()) return { name: f.name, ok: false, problem: 'not a regular file' };
  if (st.size !== f.bytes) return { name: f.name, ok: false, problem: `${st.size} bytes, the manifest says ${f.bytes}` };
  const got = await hashFile(path).catch((err: unknown) => ({ error: errorMessage(err) }));
  if ('error' in got) return { name: f.name, ok: false, problem: `unreadable: ${got.error}` };
  if (got.sha256 !== f.sha256) return { name: f.name, ok: false, problem: `sha256 ${got.sha256}, the manifest says ${f.sha256}` };
  return { name: f.name, ok: true };
}

type KeySource = NonNullable<SignatureCheck['source']>;
const oneLine = (dn: string): string => dn.replace(/\n/g, ', ');

/** Which key checks the signature: the caller's, else the package's certificate, else the manifest's own public key. */
async function pickKey(dir: string, manifest: EvidenceManifest, o: VerifyOptions): Promise<{ key: SignerKey; source: KeySource } | SignatureCheck> {
  if (o.key) return { key: o.key, source: 'given' };
  if (manifest.signer.cert === 'present') {
    let pem: Buffer | undefined;
    try {
      pem = await readRegular(join(dir, SIGNER_CERT_FILE), SIGNER_CERT_MAX_BYTES);
    } catch (err) {
      return { state: 'invalid', source: 'certificate', detail: `${SIGNER_CERT_FILE}: ${errorMessage(err)}` };
    }
    if (!pem) return { state: 'invalid', source: 'certificate', detail: `${SIGNER_CERT_FILE} is missing although the manifest says the certificate is present` };
    try {
      return { key: signerKeyFrom(pem), source: 'certificate' };
    } catch (err) {
      return { state: 'invalid', source: 'certificate', detail: `${SIGNER_CERT_FILE}: ${errorMessage(err)}` };
    }
  }
  const anchor = `give the signer's certificate or public key (--cert) for key ${manifest.signer.key_id}`;
  if (manifest.signer.public_key !== undefined) {
    try {
      return { key: signerKeyFrom(manifest.signer.public_key), source: 'manifest' };
    } catch (err) {
      return { state: 'invalid', source: 'manifest', detail: `signer.public_key of ${MANIFEST_FILE}: ${errorMessage(err)}` };
    }
  }
  return { state: 'unchecked', detail: `the package carries no certificate and no public key: ${anchor}` };
}

/** Checks manifest.sig over the exact manifest.json bytes, and how far the key it verifies under is trusted. */
async function checkSignature(dir: string, bytes: Buffer, manifest: EvidenceManifest, o: VerifyOptions): Promise<SignatureCheck> {
  const picked = await pickKey(dir, manifest, o);
  if ('state' in picked) return picked;
  const { key, source } = picked;
  const who = { source, key_id: key.key_id, ...(key.subject ? { subject: key.subject } : {}) };
  let sig: Buffer | undefined;
  try {
    sig = await readRegular(join(dir, SIGNATURE_FILE), 1024);
  } catch (err) {
    return { state: 'invalid', ...who, detail: `${SIGNATURE_FILE}: ${errorMessage(err)}` };
  }
  if (!sig) return { state: 'invalid', ...who, detail: `${SIGNATURE_FILE} is missing` };
  let good: boolean;
  try {
    good = verifySignature('sha256', bytes, { key: key.key, dsaEncoding: 'der' }, sig);
  } catch {
    good = false; // not a DER ECDSA signature
  }
  const signer = source === 'given' ? `the ${key.kind} given` : source === 'certificate' ? `the package's ${SIGNER_CERT_FILE}` : "the manifest's own public key";
  if (!good) {
    const other = key.key_id !== manifest.signer.key_id ? ` (the manifest names key ${manifest.signer.key_id}, ${signer} is key ${key.key_id})` : '';
    return { state: 'invalid', ...who, detail: `${MANIFEST_FILE} does not match ${SIGNATURE_FILE} under ${signer}${other}: altered, or signed by another key` };
  }
  if (key.key_id !== manifest.signer.key_id) {
    return { state: 'invalid', ...who, detail: `signed by key ${key.key_id}, but the manifest names key ${manifest.signer.key_id}` };
  }
  if (source === 'given') return { state: 'valid', ...who, detail: `signed by the holder of ${signer}` };
  if (source === 'certificate' && o.ca) {
    const cert = new X509Certificate(await readFile(join(dir, SIGNER_CERT_FILE)));
    if (!cert.checkIssued(o.ca) || !cert.verify(o.ca.publicKey)) {
      return { state: 'invalid', ...who, detail: `${SIGNER_CERT_FILE} (${oneLine(cert.subject)}) was not issued by the CA given (${oneLine(o.ca.subject)})` };
    }
    return { state: 'valid', ...who, detail: `signed by ${SIGNER_CERT_FILE}, issued by the CA given` };
  }
  // A key the package brings along proves the package is intact, not who made it: anyone can make a key.
  const prove =
    source === 'certificate'
      ? `check that certificate against the fleet CA (--ca FILE, or: openssl verify -CAfile ca.pem ${SIGNER_CERT_FILE})`
      : `compare key id ${key.key_id} with the key registered for the device${manifest.signer.key_source ? ` (key_source ${manifest.signer.key_source})` : ''}, or give --cert`;
  return { state: 'intact', ...who, detail: `signature matches ${signer}, but that proves no origin: ${prove}` };
}

/** Verifies the package in `dir`. Never throws for a bad package: everything wrong is in the report. */
export async function verifyEvidencePackage(dir: string, o: VerifyOptions = {}): Promise<VerifyReport> {
  const report: VerifyReport = { ok: false, manifest: undefined, problems: [], signature: { state: 'unchecked', detail: 'manifest.json could not be read' }, files: [], extra: [] };
  let bytes: Buffer | undefined;
  try {
    bytes = await readRegular(join(dir, MANIFEST_FILE), MANIFEST_MAX_BYTES);
    if (!bytes) report.problems.push(`${MANIFEST_FILE}: missing (is ${dir} an evidence package?)`);
  } catch (err) {
    report.problems.push(`${MANIFEST_FILE}: ${errorMessage(err)}`);
  }
  if (!bytes) return report;
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    report.problems.push(`${MANIFEST_FILE}: not JSON (${errorMessage(err)})`);
  }
  const parsed = EvidenceManifest.safeParse(raw);
  if (raw !== undefined && !parsed.success) report.problems.push(`${MANIFEST_FILE}: not an evidence manifest: ${formatIssues(parsed.error)}`);
  if (!parsed.success) {
    report.signature.detail = `${MANIFEST_FILE} is unusable, so the signature cannot be checked`;
    return report;
  }
  const manifest = parsed.data;
  report.manifest = manifest;
  if (canonicalJson(raw) !== bytes.toString('utf8')) report.problems.push(`${MANIFEST_FILE}: not canonical JSON (sorted keys, no whitespace): not written by the agent`);
  report.signature = await checkSignature(dir, bytes, manifest, o);
  for (const f of manifest.files) report.files.push(await checkFile(dir, f));
  const listed = new Set<string>([...PACKAGE_META_FILES, ...manifest.files.map((f) => f.name)]);
  report.extra = (await readdir(dir).catch(() => [] as string[])).filter((n) => !listed.has(n)).sort();
  report.ok = report.problems.length === 0 && report.signature.state === 'valid' && report.files.every((f) => f.ok);
  return report;
}

/** The report as lines for a person: one per check, failures named, then a verdict line. */
export function formatVerifyReport(dir: string, r: VerifyReport): string {
  const width = Math.max(14, ...r.files.map((f) => f.name.length + 2));
  const row = (name: string, text: string): string => `${name.padEnd(width)}${text}`;
  const lines: string[] = [];
  for (const p of r.problems) lines.push(`FAILED  ${p}`);
  if (r.manifest) {
    const m = r.manifest;
    lines.push(row(MANIFEST_FILE, `package ${m.package_id}, ${m.device.site}/${m.device.id} camera ${m.camera.id}, ${m.files.length} files`));
    const s = r.signature;
    const key = s.key_id ? ` [key ${s.key_id}${s.subject ? `, ${s.subject}` : ''}]` : '';
    const verdict = { valid: 'ok', intact: 'intact, signer NOT proven', invalid: 'FAILED', unchecked: 'NOT CHECKED' }[s.state];
    lines.push(row(SIGNATURE_FILE, `${verdict}: ${s.detail}${key}`));
  }
  for (const f of r.files) lines.push(row(f.name, f.ok ? 'ok' : `FAILED: ${f.problem ?? ''}`));
  for (const e of r.extra) lines.push(row(e, `not part of the package (not covered by the signature)${e.endsWith('.part') ? ': an unfinished download' : ''}`));
  const failed = [...(r.problems.length ? [MANIFEST_FILE] : []), ...(r.signature.state === 'invalid' ? [SIGNATURE_FILE] : []), ...r.files.filter((f) => !f.ok).map((f) => f.name)];
  if (failed.length) lines.push(`${dir}: verification FAILED (${failed.join(', ')})`);
  else if (r.signature.state === 'unchecked') lines.push(`${dir}: every file matches the manifest, but the signature could NOT be checked: ${r.signature.detail}`);
  else if (r.signature.state === 'intact') lines.push(`${dir}: every file matches the signed manifest, but who signed it is NOT proven (see ${SIGNATURE_FILE} above)`);
  else lines.push(`${dir}: verified: signature valid, ${r.files.length} files intact`);
  return `${lines.join('\n')}\n`;
}
