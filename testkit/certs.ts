// Test PKI made with the openssl CLI: a CA, a server cert (SAN IP:127.0.0.1, DNS:localhost), a client
// cert for mutual TLS (CN=test-device) and an unrelated second CA for "wrong CA" tests. EC P-256 keys.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import crypto from 'node:crypto';
import { promisify } from 'node:util';
import { makeTempDir } from './tmp.js';

const execFileP = promisify(execFile);

export interface TestCerts {
  /** Directory holding the files below. */
  dir: string;
  /** CA certificate (PEM) that signed serverCert and clientCert. */
  caFile: string;
  caKey: string;
  /** Server certificate, CN=localhost, subjectAltName=IP:127.0.0.1,DNS:localhost, EKU serverAuth. */
  serverCert: string;
  serverKey: string;
  /** Client certificate, CN=test-device, EKU clientAuth. */
  clientCert: string;
  clientKey: string;
  /** An unrelated self-signed CA: trusting only it must make TLS to the server fail. */
  otherCaFile: string;
  otherCaKey: string;
}

const FILES = {
  caFile: 'ca.pem',
  caKey: 'ca.key',
  serverCert: 'server.pem',
  serverKey: 'server.key',
  clientCert: 'client.pem',
  clientKey: 'client.key',
  otherCaFile: 'other-ca.pem',
  otherCaKey: 'other-ca.key',
} as const satisfies Record<Exclude<keyof TestCerts, 'dir'>, string>;

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await execFileP('openssl', args, { cwd });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr ?? e.message}`, { cause: err });
  }
}

function serial(): string {
  return `0x${crypto.randomBytes(12).toString('hex')}`;
}

async function makeCa(dir: string, cert: string, key: string, cn: string): Promise<void> {
  await openssl(
    ['req', '-x509', ...EC, '-keyout', key, '-out', cert, '-days', '3650', '-subj', `/CN=${cn}`, '-set_serial', serial(),
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
}

async function makeLeaf(dir: string, name: string, cn: string, ext: string): Promise<void> {
  const extFile = `${name}.ext`;
  await fs.writeFile(path.join(dir, extFile), ext);
  await openssl(['req', '-new', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
  await openssl(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', serial(),
      '-days', '825', '-sha256', '-extfile', extFile, '-out', `${name}.pem`],
    dir,
  );
}

async function generate(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await Promise.all([makeCa(dir, 'ca.pem', 'ca.key', 'roadside-agent test CA'), makeCa(dir, 'other-ca.pem', 'other-ca.key', 'unrelated test CA')]);
  await Promise.all([
    makeLeaf(dir, 'server', 'localhost',
      'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n'),
    makeLeaf(dir, 'client', 'test-device',
      'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n'),
  ]);
}

function filesIn(dir: string): TestCerts {
  const entries = Object.entries(FILES).map(([k, f]) => [k, path.join(dir, f)] as const);
  return { dir, ...(Object.fromEntries(entries) as Omit<TestCerts, 'dir'>) };
}

let cached: Promise<TestCerts> | undefined;

/**
 * Create the test PKI in `dir` (default: a per-process temp dir, removed at exit). The keys are generated
 * once per process; later calls copy the same files into their `dir`, so every caller shares one CA.
 */
export async function makeCerts(dir?: string): Promise<TestCerts> {
  if (!cached) {
    const p = (async () => {
      const base = makeTempDir('certs');
      await generate(base);
      return filesIn(base);
    })();
    cached = p;
    p.catch(() => {
      if (cached === p) cached = undefined;
    });
  }
  const master = await cached;
  if (dir === undefined || path.resolve(dir) === master.dir) return master;
  const target = path.resolve(dir);
  await fs.mkdir(target, { recursive: true });
  await Promise.all(Object.values(FILES).map((f) => fs.copyFile(path.join(master.dir, f), path.join(target, f))));
  return filesIn(target);
}

/** The PEM contents of a cert set, as Node's tls options want them (ca / cert / key buffers). */
export async function readCerts(certs: TestCerts): Promise<Record<Exclude<keyof TestCerts, 'dir'>, Buffer>> {
  const entries = await Promise.all(
    (Object.keys(FILES) as (keyof typeof FILES)[]).map(async (k) => [k, await fs.readFile(certs[k])] as const),
  );
  return Object.fromEntries(entries) as Record<Exclude<keyof TestCerts, 'dir'>, Buffer>;
}
