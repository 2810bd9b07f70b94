// A box right after `provision`: the key and the CSR are there, the client certificate the center signs is not
// yet. The config names the certificate, so the loader reports it missing; doctor and provision both know
// that this one problem means "waiting for the center", not "broken".
import { existsSync } from 'node:fs';
import type { ConfigProblem } from '../../config/loader.js';
import type { Config } from '../../config/schema/index.js';
import { csrFileFor } from './locations.js';

export interface PendingCert {
  /** mqtt.tls.cert: where the signed certificate goes. */
  cert: string;
  /** The CSR beside it, to send to the control center. */
  csr: string;
}

/** The pending client certificate of `config`: mqtt.tls.cert absent with its CSR beside it; else undefined. */
export function pendingClientCert(config: Pick<Config, 'mqtt'>): PendingCert | undefined {
  const cert = config.mqtt.tls?.cert;
  if (!cert || existsSync(cert)) return undefined;
  const csr = csrFileFor(cert);
  return existsSync(csr) ? { cert, csr } : undefined;
}

/** The loader's problem for that missing certificate (and nothing else). */
export const isPendingCertProblem = (p: ConfigProblem): boolean => p.path === 'mqtt.tls.cert' && p.message.startsWith('file not found');
