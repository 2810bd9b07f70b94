// TLS material for `provision`: a given certificate + key (checked to belong together) or a new EC P-256 key
// and a CSR for the center to sign, all under <config dir>/tls and referenced relative to the config file.
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { writeFileAtomic } from '../../../core/fs.js';
import { csrFileFor } from '../locations.js';
import type { Answers } from './gather.js';
import { ProvisionInputError } from './inputs.js';
import { mkdirMode, type Owner } from './owner.js';

const execFileP = promisify(execFile);

export async function openssl(bin: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP(bin, args, { maxBuffer: 1 << 20 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args[0] ?? ''} failed: ${(e.stderr ?? e.message).trim()}`, { cause: err });
  }
}

/** A given certificate and key must belong together: checked before anything is written. */
export async function checkCertKeyPair(bin: string, tls: Answers['tls']): Promise<void> {
  if (!tls?.cert || !tls.key) return;
  const [certPub, keyPub] = await Promise.all([openssl(bin, ['x509', '-in', tls.cert, '-noout', '-pubkey']), openssl(bin, ['pkey', '-in', tls.key, '-pubout'])]);
  if (certPub.trim() !== keyPub.trim()) throw new ProvisionInputError(`--key ${tls.key} does not belong to --cert ${tls.cert}`);
}

export interface TlsResult {
  /** mqtt.tls of the config, paths relative to it; undefined when there is nothing to reference. */
  yaml?: Record<string, string>;
  /** The client certificate the center still has to sign (the CSR is at `csrFile`). */
  pendingCert?: string;
  csrFile?: string;
  /** Lines for the "provisioned" summary. */
  created: string[];
}

/** Installs or generates the TLS files under `tlsDir`. */
export async function writeTls(a: Answers & { tls: NonNullable<Answers['tls']> }, tlsDir: string, bin: string, owner: Owner | undefined): Promise<TlsResult> {
  const yaml: Record<string, string> = {};
  const created: string[] = [];
  let pendingCert: string | undefined;
  let csrFile: string | undefined;
  mkdirMode(tlsDir, 0o750);
  if (owner) chownSync(tlsDir, owner.uid, owner.gid);
  if (a.tls.ca) {
    writeFileAtomic(join(tlsDir, 'ca.pem'), readFileSync(a.tls.ca), 0o644);
    yaml.ca = 'tls/ca.pem';
    created.push(`ca       ${join(tlsDir, 'ca.pem')}`);
  }
  const keyFile = join(tlsDir, 'client.key');
  const certFile = join(tlsDir, 'client.pem');
  if (a.tls.cert && a.tls.key) {
    writeFileAtomic(certFile, readFileSync(a.tls.cert), 0o644);
    writeFileAtomic(keyFile, readFileSync(a.tls.key), 0o600);
    created.push(`cert     ${certFile}`, `key      ${keyFile} (0600)`);
  } else if (a.tls.generate) {
    if (existsSync(keyFile) && !a.tls.newKey) {
      chmodSync(keyFile, 0o600);
      created.push(`key      ${keyFile} (0600, kept: --new-key replaces it)`);
    } else {
      const pem = await openssl(bin, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']);
      writeFileAtomic(keyFile, pem, 0o600);
      created.push(`key      ${keyFile} (EC P-256, 0600)`);
    }
    csrFile = csrFileFor(certFile);
    const subject = `/O=${a.tls.org.replace(/[/\\]/g, '_')}/OU=${a.site}/CN=${a.deviceId}`;
    const csr = await openssl(bin, ['req', '-new', '-key', keyFile, '-subj', subject, '-addext', 'keyUsage=critical,digitalSignature', '-addext', 'extendedKeyUsage=clientAuth']);
    writeFileAtomic(csrFile, csr, 0o644);
    created.push(`csr      ${csrFile} (CN=${a.deviceId}, OU=${a.site})`);
    if (!existsSync(certFile)) pendingCert = certFile;
  }
  if (a.tls.cert || a.tls.generate) {
    yaml.cert = 'tls/client.pem';
    yaml.key = 'tls/client.key';
    if (owner) chownSync(keyFile, owner.uid, owner.gid);
  }
  return { ...(Object.keys(yaml).length > 0 ? { yaml } : {}), pendingCert, csrFile, created };
}
