// `roadside-agent evidence verify DIR [--cert FILE] [--ca FILE]`: checks an evidence package on disk, as an
// authority would (docs/evidence.md): the ECDSA signature of manifest.json, then every file's size and sha256.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { signerKeyFrom, type SignerKey } from '../contract/evidence.js';
import { formatVerifyReport, verifyEvidencePackage } from '../contract/evidence-verify.js';
import type { CliIo } from '../core/cli-io.js';
import { errorMessage, EXIT } from '../core/errors.js';
import type { CliContext } from './framework.js';

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

/** `evidence verify`, as a commander command for the CLI tree (main.ts adds `evidenceCommand(ctx)`). */
export function evidenceCommand(ctx: CliContext): Command {
  const verify = new Command('verify')
    .summary('check an evidence package: signature and every file')
    .description(
      'Checks an evidence package directory: the ECDSA P-256 signature (manifest.sig) of manifest.json with the ' +
        "signer's certificate or public key (--cert), or with the package's own cert.pem issued by the fleet CA " +
        "(--ca), then every file's size and sha256 against the manifest. Names every file that fails. A key the " +
        'package brings along (its cert.pem without --ca, or the public key in the manifest) shows it intact but ' +
        'proves no origin: that exits 1. See docs/evidence.md.',
    )
    .argument('<DIR>', 'the package directory (holding manifest.json)')
    .option('--cert <FILE>', "the signer's certificate or public key (PEM or DER), obtained apart from the package")
    .option('--ca <FILE>', "the fleet CA certificate that must have issued the package's cert.pem (without --cert)")
    .addHelpText('after', '\nExit codes: 0 verified, 1 a check failed or the signer is not proven, 64 usage.')
    .action(async (dir: string, opts: { cert?: string; ca?: string }) => {
      ctx.code = await evidenceVerify({ dir, cert: opts.cert, ca: opts.ca }, ctx.io);
    });
  return new Command('evidence').summary('evidence packages of violations').description('Evidence packages of violations (docs/evidence.md).').addCommand(verify);
}
