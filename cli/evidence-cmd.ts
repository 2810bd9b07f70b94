// `roadside-agent evidence verify`: the command; evidence-verify.ts does the checking.
import { Command } from 'commander';
import type { CliContext } from './framework.js';

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
      // The package format and its checks (zod schema, crypto) load only when a package is verified.
      const { evidenceVerify } = await import('./evidence-verify.js');
      ctx.code = await evidenceVerify({ dir, cert: opts.cert, ca: opts.ca }, ctx.io);
    });
  return new Command('evidence').summary('evidence packages of violations').description('Evidence packages of violations (docs/evidence.md).').addCommand(verify);
}
