// `roadside-agent center evidence get --device D --event ID --out DIR`: fetches a violation's evidence package
// from a box over the broker with the `evidence` command (manifest first, then every file chunk by chunk, a few
// chunks in flight), checks each chunk's sha256 and asks again for a bad or missing one, writes the package to
// DIR and verifies it there (contract/evidence-verify.ts). A fetch that stops leaves `<file>.part` files: the
// next one resumes from their size. Files written in order, so a `.part` is always a clean prefix.
import { createHash, X509Certificate } from 'node:crypto';
import { lstat, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { CommandResponse } from '../contract/command.js';
import { COMMANDS } from '../contract/commands.js';
import {
  EVENT_ID_PATTERN,
  EVIDENCE_CHUNK_MAX_BYTES,
  EvidenceManifest,
  MANIFEST_FILE,
  SIGNATURE_FILE,
  SIGNER_CERT_FILE,
  signerKeyFrom,
  type SignerKey,
  type EvidenceChunkResult,
  type EvidenceFile,
  type EvidencePackageResult,
} from '../contract/evidence.js';
import { formatVerifyReport, hashFile, verifyEvidencePackage } from '../contract/evidence-verify.js';
import type { CliIo } from '../core/cli-io.js';
import { AgentError, errorMessage, EXIT } from '../core/errors.js';
import { writeFileAtomic } from '../core/fs.js';
import { createLogger } from '../core/log.js';
import { Backoff } from '../core/time.js';
import { DeviceLink, type CenterConfigOptions } from './config-cmd.js';

export interface EvidenceGetOptions extends CenterConfigOptions {
  /** Event id (UUID) of the package. */
  event: string;
  /** Directory the package is written to (created; a resumed fetch reuses what is there). */
  out: string;
  /** The signer's certificate or public key (PEM/DER) for the final verification (not the broker's TLS files). */
  signer_cert?: string | undefined;
  /** The fleet CA that must have issued the package's cert.pem (the final verification, without `signer_cert`). */
  signer_ca?: string | undefined;
  /** manifest_sha256 of the event message (its `evidence`): the box's manifest must be exactly that one. */
  manifest_sha256?: string | undefined;
  /** Chunk requests in flight. Default 4. */
  window?: number | undefined;
  /** Attempts per chunk before the fetch gives up. Default 6. */
  attempts?: number | undefined;
  /** Stops the fetch; what is on disk stays for a resume. */
  signal?: AbortSignal | undefined;
}

/** One `evidence` request to the box: resolves its response (error responses too), rejects when none came. */
export type EvidenceAsk = (args: Record<string, unknown>) => Promise<CommandResponse>;

export interface FetchStats {
  /** File bytes fetched by this run. */
  fetched_bytes: number;
  /** File bytes already on disk (resumed, or whole files kept). */
  resumed_bytes: number;
  chunks: number;
  /** Chunk requests asked again (no answer, BUSY, a bad chunk). */
  retries: number;
  ms: number;
  /** The box reported the package acknowledged (every file fetched to its end). */
  acknowledged: boolean;
}

/** Answers worth asking again: the box was busy or slow, or the answer was lost. */
const RETRYABLE = new Set(['BUSY', 'TIMEOUT', 'NO_ANSWER', 'HANDLER_FAILED']);

function aborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AgentError('ABORTED', 'the fetch was stopped; run it again to resume');
}

/** The ok data of an evidence answer; an error answer throws its code. */
function dataOf(r: CommandResponse): unknown {
  if (r.status === 'error') throw new AgentError(r.error.code, `${r.error.code}: ${r.error.message}`);
  const parsed = COMMANDS.evidence.result.safeParse(r.data);
  if (!parsed.success) throw new AgentError('BAD_ANSWER', 'the evidence answer does not match the contract');
  return parsed.data;
}

/** Fetches one package into `out` through `ask`. Throws AgentError (code, message) when it cannot complete. */
export class EvidenceFetch {
  readonly stats: FetchStats = { fetched_bytes: 0, resumed_bytes: 0, chunks: 0, retries: 0, ms: 0, acknowledged: false };
  private readonly window: number;
  private readonly attempts: number;

  constructor(
    private readonly ask: EvidenceAsk,
    private readonly eventId: string,
    private readonly out: string,
    private readonly o: {
      window?: number | undefined;
      attempts?: number | undefined;
      signal?: AbortSignal | undefined;
      manifest_sha256?: string | undefined;
      progress?: (line: string) => void;
    } = {},
  ) {
    this.window = Math.max(1, o.window ?? 4);
    this.attempts = Math.max(1, o.attempts ?? 6);
  }

  async run(): Promise<FetchStats> {
    const t0 = performance.now();
    try {
      const pkg = await this.fetchManifest();
      for (const f of pkg.files) await this.fetchFile(f);
    } finally {
      this.stats.ms = Math.round(performance.now() - t0);
    }
    return this.stats;
  }

  /** The manifest, its signature and certificate, written to `out`; refuses a directory holding another package. */
  private async fetchManifest(): Promise<EvidenceManifest> {
    const r = (await this.request({ event_id: this.eventId }, 'the manifest')) as EvidencePackageResult;
    if (!('manifest_base64' in r)) throw new AgentError('BAD_ANSWER', 'asked for the manifest, got a chunk');
    const bytes = Buffer.from(r.manifest_base64, 'base64');
    const sha = createHash('sha256').update(bytes).digest('hex');
    if (this.o.manifest_sha256 !== undefined && sha !== this.o.manifest_sha256.toLowerCase()) {
      throw new AgentError('EVIDENCE_MISMATCH', `the box's ${MANIFEST_FILE} has sha256 ${sha}, the event says ${this.o.manifest_sha256}: not the package the event announced`);
    }
    let manifest: EvidenceManifest;
    try {
      manifest = EvidenceManifest.parse(JSON.parse(bytes.toString('utf8')));
    } catch (err) {
      throw new AgentError('BAD_ANSWER', `the box's ${MANIFEST_FILE} is not an evidence manifest: ${errorMessage(err)}`);
    }
    if (manifest.package_id !== this.eventId) throw new AgentError('BAD_ANSWER', `asked for event ${this.eventId}, got the manifest of ${manifest.package_id}`);
    await mkdir(this.out, { recursive: true });
    const existing = await readFile(join(this.out, MANIFEST_FILE)).catch(() => undefined);
    if (existing && !existing.equals(bytes)) {
      throw new AgentError('OUT_CONFLICT', `${this.out} holds another package (its ${MANIFEST_FILE} differs from the box's): use an empty directory`);
    }
    writeFileAtomic(join(this.out, MANIFEST_FILE), bytes);
    writeFileAtomic(join(this.out, SIGNATURE_FILE), Buffer.from(r.signature_base64, 'base64'));
    if (r.cert_pem !== null) writeFileAtomic(join(this.out, SIGNER_CERT_FILE), r.cert_pem);
    this.stats.acknowledged = r.acknowledged;
    return manifest;
  }

  /** One file: kept if already complete, else resumed from its `.part`; the last request reaches its end (the acknowledgement). */
  private async fetchFile(f: EvidenceFile): Promise<void> {
    const final = join(this.out, f.name);
    const part = `${final}.part`;
    const done = await lstat(final).catch(() => undefined);
    if (done?.isFile() && done.size === f.bytes && (await hashFile(final)).sha256 === f.sha256) {
      this.stats.resumed_bytes += f.bytes;
      await this.chunk(f, f.bytes); // nothing to fetch: only tells the box this file was fetched to its end
      this.o.progress?.(`${f.name}: already here (${f.bytes} bytes)`);
      return;
    }
    for (let round = 0; ; round++) {
      let from = (await stat(part).catch(() => undefined))?.size ?? 0;
      if (from > f.bytes) {
        await rm(part, { force: true });
        from = 0;
      }
      this.stats.resumed_bytes += from;
      await this.fetchRange(f, part, from);
      const got = await hashFile(part);
      if (got.sha256 === f.sha256 && got.size === f.bytes) {
        await rename(part, final);
        this.o.progress?.(`${f.name}: ${f.bytes} bytes${from > 0 ? ` (resumed at ${from})` : ''}`);
        return;
      }
      // Every chunk matched its own hash, so the prefix kept from an earlier run was bad: once more from 0.
      await rm(part, { force: true });
      if (round > 0 || from === 0) throw new AgentError('EVIDENCE_MISMATCH', `${f.name}: the bytes fetched do not match the manifest's sha256 (the file on the box differs from its manifest)`);
      this.stats.resumed_bytes -= from;
    }
  }

  /** Appends [from, size) to `part`, `window` chunks in flight, written in order. */
  private async fetchRange(f: EvidenceFile, part: string, from: number): Promise<void> {
    const fh = await open(part, 'a');
    try {
      const inflight: Promise<Buffer>[] = [];
      let next = from;
      const ask = (offset: number): void => {
        const p = this.chunk(f, offset);
        p.catch(() => undefined); // awaited in order below; a rejection left behind by an earlier failure is not unhandled
        inflight.push(p);
      };
      if (from === f.bytes) ask(from); // complete already: one empty request reaches the end
      for (;;) {
        while (inflight.length < this.window && next < f.bytes) {
          ask(next);
          next += Math.min(EVIDENCE_CHUNK_MAX_BYTES, f.bytes - next);
        }
        const p = inflight.shift();
        if (!p) break;
        const data = await p;
        aborted(this.o.signal);
        await fh.write(data);
        this.stats.fetched_bytes += data.length;
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /** One chunk, checked (offset, length, total, sha256) and asked again while retryable. */
  private async chunk(f: EvidenceFile, offset: number): Promise<Buffer> {
    const length = Math.min(EVIDENCE_CHUNK_MAX_BYTES, f.bytes - offset);
    const what = `${f.name} at ${offset}`;
    const args = { event_id: this.eventId, file: f.name, offset, ...(length > 0 ? { length } : {}) };
    const r = (await this.request(args, what, (c) => {
      const chunk = c as EvidenceChunkResult;
      if (!('data_base64' in chunk) || chunk.file !== f.name || chunk.offset !== offset) return 'an answer to another request';
      if (chunk.total !== f.bytes) throw new AgentError('EVIDENCE_MISMATCH', `${f.name} is ${chunk.total} bytes on the box, the manifest says ${f.bytes}`);
      const data = Buffer.from(chunk.data_base64, 'base64');
      if (data.length !== length || chunk.length !== length) return `${data.length} bytes instead of ${length}`;
      if (createHash('sha256').update(data).digest('hex') !== chunk.sha256) return 'a chunk whose bytes do not match its sha256';
      return undefined;
    })) as EvidenceChunkResult;
    this.stats.chunks++;
    if (r.acknowledged) this.stats.acknowledged = true;
    return Buffer.from(r.data_base64, 'base64');
  }

  /** Asks until an answer passes `check` (undefined = good), backing off between attempts. */
  private async request(args: Record<string, unknown>, what: string, check: (data: unknown) => string | undefined = () => undefined): Promise<unknown> {
    const backoff = new Backoff({ initial_ms: 250, max_ms: 4000, jitter: 0.3 });
    let last = '';
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      aborted(this.o.signal);
      if (attempt > 0) {
        this.stats.retries++;
        await new Promise((r) => setTimeout(r, backoff.next()));
        aborted(this.o.signal);
      }
      try {
        const data = dataOf(await this.ask(args));
        const bad = check(data);
        if (bad === undefined) return data;
        last = bad;
      } catch (err) {
        if (!(err instanceof AgentError) || !RETRYABLE.has(err.code)) throw err;
        last = err.message;
      }
    }
    throw new AgentError('FETCH_FAILED', `${what}: ${last} (${this.attempts} attempts)`);
  }
}

/**
 * `center evidence get`: 0 when the package is complete and consistent (every file matches the manifest and the
 * signature is good under the key it was checked with; when no trusted key was given, the report says the signer is
 * not proven); 1 when the fetch fails or a check fails; 64 on usage.
 */
export async function evidenceGet(o: EvidenceGetOptions, io: CliIo): Promise<number> {
  if (!EVENT_ID_PATTERN.test(o.event)) {
    io.stderr(`roadside-agent center evidence get: --event must be an event id (a lowercase UUID), got "${o.event}"\n`);
    return EXIT.USAGE;
  }
  let key: SignerKey | undefined;
  let ca: X509Certificate | undefined;
  let flag = `--cert ${o.signer_cert ?? ''}`;
  try {
    if (o.signer_cert !== undefined) key = signerKeyFrom(await readFile(o.signer_cert));
    flag = `--signer-ca ${o.signer_ca ?? ''}`;
    if (o.signer_ca !== undefined) ca = new X509Certificate(await readFile(o.signer_ca));
  } catch (err) {
    io.stderr(`roadside-agent center evidence get: ${flag}: ${errorMessage(err)}\n`);
    return EXIT.USAGE;
  }
  const timeoutMs = (o.timeout_s ?? 30) * 1000;
  const log = createLogger({ level: o.log_level ?? 'warn', destination: pino.destination({ fd: 2, sync: true }) });
  let link: DeviceLink | undefined;
  try {
    link = new DeviceLink(o, log);
    await link.connect();
    const birth = await link.birth(timeoutMs);
    if (!birth) throw new AgentError('NO_BIRTH', `no birth from device "${o.device}" under ${o.prefix ?? 'roadside'}/ within ${o.timeout_s ?? 30} s: unknown device, or it never connected`);
    const device = link;
    const ask: EvidenceAsk = (args) => device.request('evidence', args, birth.site, timeoutMs);
    const progress = (l: string): void => io.stdout(`${l}\n`);
    const fetch = new EvidenceFetch(ask, o.event, o.out, { window: o.window, attempts: o.attempts, signal: o.signal, manifest_sha256: o.manifest_sha256, progress });
    const s = await fetch.run();
    const rate = s.ms > 0 ? Math.round((s.fetched_bytes * 1000) / s.ms) : 0;
    io.stdout(
      `${birth.site}/${link.device} event ${o.event}: ${s.fetched_bytes} bytes fetched in ${(s.ms / 1000).toFixed(1)} s (${rate} bytes/s)` +
        `${s.resumed_bytes ? `, ${s.resumed_bytes} already here` : ''}${s.retries ? `, ${s.retries} chunk requests repeated` : ''}` +
        `${s.acknowledged ? '; acknowledged on the box' : ''}\n`,
    );
  } catch (err) {
    const code = err instanceof AgentError ? err.code : undefined;
    io.stderr(`roadside-agent center evidence get: ${errorMessage(err)}\n`);
    return code === 'USAGE' ? EXIT.USAGE : EXIT.FATAL;
  } finally {
    await link?.close();
  }
  const report = await verifyEvidencePackage(o.out, { key, ca });
  io.stdout(formatVerifyReport(o.out, report));
  const failed = report.problems.length > 0 || report.signature.state === 'invalid' || report.files.some((f) => !f.ok);
  return failed ? EXIT.FATAL : EXIT.OK;
}
