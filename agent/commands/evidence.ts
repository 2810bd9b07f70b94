// evidence: hands out the evidence packages in the evidence directory (format: contract/evidence.ts), the
// manifest first, then the files in chunks the center asks for by offset (so an interrupted fetch resumes
// where it stopped). Only what a package's manifest lists is served, and only from `<dir>/<event_id>/`
// without following symlinks. The bytes go out through a token bucket: a fetch shares the uplink with live
// events and must leave them room.
import { constants } from 'node:fs';
import { lstat, open, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHash } from 'node:crypto';
import {
  EVIDENCE_CHUNK_MAX_BYTES,
  EVIDENCE_RATE_BYTES_S,
  EvidenceManifest,
  MANIFEST_FILE,
  MANIFEST_MAX_BYTES,
  SIGNATURE_FILE,
  SIGNER_CERT_FILE,
  SIGNER_CERT_MAX_BYTES,
} from '../../contract/evidence.js';
import type { CommandResult } from '../../contract/commands.js';
import { AgentError, errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { formatIssues } from '../../core/zod-issues.js';
import { PackageStore } from '../../inference/evidence/store.js';
import type { AgentCommands } from './registry.js';

export interface EvidenceServeOptions {
  /** The evidence directory in force (analytics.evidence.dir, absolute; it may change with config-apply). */
  dir: () => string;
  /** Bytes of file data served per second, all requests together. Default EVIDENCE_RATE_BYTES_S. */
  rate_bytes_s?: number | undefined;
  /** Longest a request waits for its share of the rate before it is refused with BUSY, ms. Default 10 000. */
  max_wait_ms?: number | undefined;
  /** Called once per package when every one of its files has been fetched to its end. */
  onAcknowledged?: ((eventId: string) => void | Promise<void>) | undefined;
}

/** Packages whose fetch progress is remembered (most recent first out): a bound on memory, not on fetches. */
const TRACKED_PACKAGES = 256;
const O_NOFOLLOW_RDONLY = constants.O_RDONLY | constants.O_NOFOLLOW;

/**
 * Bytes per second with a burst of one chunk. A request reserves its bytes at once (the balance may go
 * negative) and waits until the balance it leaves would have refilled: concurrent requests queue in the
 * order they reach the bucket, and the long-run rate never exceeds `rate`.
 */
export class ByteBucket {
  private balance: number;
  private last: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.balance = burst;
    this.last = now();
  }

  /** Reserves `n` bytes: the wait before sending them, ms; undefined (nothing reserved) when it would exceed `maxWaitMs`. */
  reserve(n: number, maxWaitMs: number): number | undefined {
    const t = this.now();
    this.balance = Math.min(this.burst, this.balance + ((t - this.last) * this.rate) / 1000);
    this.last = t;
    const after = this.balance - n;
    const wait = after >= 0 ? 0 : (-after * 1000) / this.rate;
    if (wait > maxWaitMs) return undefined;
    this.balance = after;
    return wait;
  }
}

interface OpenPackage {
  dir: string;
  manifestBytes: Buffer;
  manifest: EvidenceManifest;
}

/** Why a package file could not be opened, as a command error (never the box's paths). */
function openError(err: unknown, label: string): AgentError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new AgentError('EVIDENCE_INCOMPLETE', `${label} is missing (the package is still being written, or broken)`);
  if (code === 'ELOOP') return new AgentError('EVIDENCE_FILE_REFUSED', `${label} is a symlink: never followed`);
  return new AgentError('EVIDENCE_FILE_REFUSED', `${label} cannot be read (${code ?? errorMessage(err)})`);
}

/** Reads a package file that is a regular file and not a symlink, at most `max` bytes. */
async function readNoFollow(path: string, label: string, max: number): Promise<Buffer> {
  const fh = await open(path, O_NOFOLLOW_RDONLY).catch((err: unknown) => {
    throw openError(err, label);
  });
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new AgentError('EVIDENCE_FILE_REFUSED', `${label} is not a regular file`);
    if (st.size > max) throw new AgentError('EVIDENCE_CORRUPT', `${label} has ${st.size} bytes, more than ${max}`);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/** The package of `eventId` in `root`: its directory checked, its manifest read and checked. */
async function openPackage(root: string, eventId: string): Promise<OpenPackage> {
  let base: string;
  try {
    base = await realpath(root);
  } catch (err) {
    throw new AgentError('EVIDENCE_NOT_FOUND', `no evidence directory (${errorMessage(err)})`);
  }
  const dir = join(base, eventId);
  const st = await lstat(dir).catch(() => undefined);
  if (!st) throw new AgentError('EVIDENCE_NOT_FOUND', `no evidence package for event ${eventId}`);
  if (!st.isDirectory()) throw new AgentError('EVIDENCE_FILE_REFUSED', `the package of event ${eventId} is not a plain directory (a symlink is never followed)`);
  const manifestBytes = await readNoFollow(join(dir, MANIFEST_FILE), `${eventId}/${MANIFEST_FILE}`, MANIFEST_MAX_BYTES);
  let raw: unknown;
  try {
    raw = JSON.parse(manifestBytes.toString('utf8'));
  } catch {
    throw new AgentError('EVIDENCE_CORRUPT', `${MANIFEST_FILE} of event ${eventId} is not JSON`);
  }
  const parsed = EvidenceManifest.safeParse(raw);
  if (!parsed.success) throw new AgentError('EVIDENCE_CORRUPT', `${MANIFEST_FILE} of event ${eventId} is not an evidence manifest: ${formatIssues(parsed.error)}`);
  if (parsed.data.package_id !== eventId) throw new AgentError('EVIDENCE_CORRUPT', `${MANIFEST_FILE} in ${eventId}/ belongs to package ${parsed.data.package_id}`);
  return { dir, manifestBytes, manifest: parsed.data };
}

/** Reads `length` bytes at `offset` of a listed file, checking it is still the size the manifest says. */
async function readChunk(path: string, label: string, size: number, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, O_NOFOLLOW_RDONLY).catch((err: unknown) => {
    throw openError(err, label);
  });
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new AgentError('EVIDENCE_FILE_REFUSED', `${label} is not a regular file`);
    if (st.size !== size) throw new AgentError('EVIDENCE_CORRUPT', `${label} has ${st.size} bytes, the manifest says ${size}`);
    const buf = Buffer.alloc(length);
    for (let got = 0; got < length; ) {
      const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
      if (bytesRead === 0) throw new AgentError('EVIDENCE_CORRUPT', `${label} ended early`);
      got += bytesRead;
    }
    return buf;
  } finally {
    await fh.close();
  }
}

/** Which files of which packages have been fetched to their end, and which packages are complete. */
class FetchProgress {
  private readonly ended = new Map<string, Set<string>>();
  private readonly complete = new Set<string>();

  isComplete(eventId: string): boolean {
    return this.complete.has(eventId);
  }

  /** Records that `file` was served to its end; true when this completed the package. */
  fileEnded(eventId: string, file: string, all: readonly string[]): boolean {
    if (this.complete.has(eventId)) return false;
    let set = this.ended.get(eventId);
    if (!set) {
      set = new Set();
      this.ended.set(eventId, set);
      if (this.ended.size > TRACKED_PACKAGES) this.ended.delete(this.ended.keys().next().value!);
    }
    set.add(file);
    if (!all.every((f) => set.has(f))) return false;
    this.ended.delete(eventId);
    this.complete.add(eventId);
    if (this.complete.size > TRACKED_PACKAGES) this.complete.delete(this.complete.values().next().value!);
    return true;
  }
}

/**
 * `onAcknowledged` for the box: tells the writer's package store (inference/evidence/store.ts), whose retention
 * deletes acknowledged packages first and keeps the acknowledgement across restarts.
 */
export function acknowledgeInStore(evidence: () => { dir: string; max_mb: number; max_days: number }, log: Logger): (eventId: string) => Promise<void> {
  return async (eventId) => {
    const e = evidence();
    const known = await PackageStore.forDir(e.dir, { max_mb: e.max_mb, max_days: e.max_days, log }).markAcknowledged(eventId);
    if (!known) log.warn({ event_id: eventId }, 'evidence package fetched, but the package store does not know it: not acknowledged');
  };
}

export function registerEvidence(commands: AgentCommands, o: EvidenceServeOptions): void {
  const bucket = new ByteBucket(o.rate_bytes_s ?? EVIDENCE_RATE_BYTES_S, EVIDENCE_CHUNK_MAX_BYTES);
  const maxWaitMs = o.max_wait_ms ?? 10_000;
  const progress = new FetchProgress();

  commands.register('evidence', async ({ event_id, file, offset, length }, ctx): Promise<CommandResult<'evidence'>> => {
    const pkg = await openPackage(o.dir(), event_id);
    const names = pkg.manifest.files.map((f) => f.name);
    if (file === undefined) {
      const signature = await readNoFollow(join(pkg.dir, SIGNATURE_FILE), `${event_id}/${SIGNATURE_FILE}`, 1024);
      const cert = pkg.manifest.signer.cert === 'present' ? (await readNoFollow(join(pkg.dir, SIGNER_CERT_FILE), `${event_id}/${SIGNER_CERT_FILE}`, SIGNER_CERT_MAX_BYTES)).toString('utf8') : null;
      return {
        event_id,
        manifest_base64: pkg.manifestBytes.toString('base64'),
        signature_base64: signature.toString('base64'),
        cert_pem: cert,
        files: pkg.manifest.files,
        acknowledged: progress.isComplete(event_id),
      };
    }
    const entry = pkg.manifest.files.find((f) => f.name === file);
    if (!entry) throw new AgentError('EVIDENCE_FILE_REFUSED', `"${file}" is not a file of the package of event ${event_id} (files: ${names.join(', ')})`);
    const from = offset ?? 0;
    if (from > entry.bytes) throw new AgentError('EVIDENCE_OFFSET', `offset ${from} is past the end of ${file} (${entry.bytes} bytes)`);
    const n = Math.min(length ?? EVIDENCE_CHUNK_MAX_BYTES, entry.bytes - from);
    const wait = bucket.reserve(n, maxWaitMs);
    if (wait === undefined) throw new AgentError('BUSY', `evidence is served at ${bucket.rate} bytes/s and the queue is full; ask again in a few seconds`);
    if (wait > 0) await sleep(wait);
    const data = await readChunk(join(pkg.dir, entry.name), `${event_id}/${file}`, entry.bytes, from, n);
    const acknowledged = from + n === entry.bytes && progress.fileEnded(event_id, file, names);
    if (acknowledged) {
      ctx.log.info({ event_id }, 'evidence package fetched completely: acknowledged');
      await Promise.resolve()
        .then(() => o.onAcknowledged?.(event_id))
        .catch((err: unknown) => ctx.log.warn({ err, event_id }, 'evidence acknowledgement failed'));
    }
    return {
      event_id,
      file,
      offset: from,
      length: n,
      total: entry.bytes,
      sha256: createHash('sha256').update(data).digest('hex'),
      data_base64: data.toString('base64'),
      acknowledged,
    };
  });
}
