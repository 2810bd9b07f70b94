// `roadside-agent evidence verify DIR [--cert FILE] [--ca FILE]`: checks an evidence package on disk, as an
// authority would (docs/evidence.md): the ECDSA signature of manifest.json, then every file's size and sha256.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { signerKeyFrom, type SignerKey } from '../contract/evidence.js';
import { formatVerifyReport, verifyEvidencePackage } from '../contract/evidence-verify.js';
import type { CliIo } from '../core/cli-io.js';
import { errorMessage, EXIT } from '../core/errors.js';

export interface EvidenceVerifyArgs {
  /** The package directory (the one holding manifest.json). */
  dir: string;
  /** The signer's certificate or public key (PEM or DER), obtained apart from the package. */
  cert?: string | undefined;
  /** The fleet CA that must have issued the package's own cert.pem (used without --cert). */
  ca?: string | undefined;
}

/**
 * 0: signature valid under a trusted key (--cert, or the package's cert.pem issued by --ca) and every file intact;
 * 1: anything failed, or the signer is not proven (only the package's own key, or no key); 64: a --cert / --ca
 * that cannot be read.
 */
export async function evidenceVerify(args: EvidenceVerifyArgs, io: CliIo): Promise<number> {
  let key: SignerKey | undefined;
  let ca: X509Certificate | undefined;
  try {
    if (args.cert !== undefined) key = signerKeyFrom(await readFile(args.cert));
  } catch (err) {
    io.stderr(`roadside-agent evidence verify: --cert ${args.cert ?? ''}: ${errorMessage(err)}\n`);
    return EXIT.USAGE;
  }
  try {
    if (args.ca !== undefined) ca = new X509Certificate(await readFile(args.ca));
  } catch (err) {
    io.stderr(`roadside-agent evidence verify: --ca ${args.ca ?? ''}: not an X.509 certificate (${errorMessage(err)})\n`);
    return EXIT.USAGE;
  }
  const report = await verifyEvidencePackage(args.dir, { key, ca });
  const text = formatVerifyReport(args.dir, report);
  if (report.ok) io.stdout(text);
  else io.stderr(text);
  return report.ok ? EXIT.OK : EXIT.FATAL;
}
