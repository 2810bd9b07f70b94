// Everything `provision` writes, in an order where a failure leaves no half-written file, then the check the
// agent runs at start.
import { chownSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ConfigError, formatProblems, loadConfigFile, type ConfigProblem } from '../../../config/loader.js';
import { EXIT } from '../../../core/errors.js';
import { writeFileAtomic } from '../../../core/fs.js';
import type { CliIo } from '../../../core/cli-io.js';
import { isPendingCertProblem } from '../pending-cert.js';
import { configText, secretsOf, secretsText } from './document.js';
import type { Answers } from './gather.js';
import { lookupOwner, mkdirMode } from './owner.js';
import { checkCertKeyPair, writeTls, type TlsResult } from './tls.js';

export async function apply(a: Answers, io: CliIo, bin: string): Promise<number> {
  const owner = await lookupOwner(a.owner);
  const confDir = dirname(a.out);
  const secretsFile = join(confDir, 'secrets.env');
  await checkCertKeyPair(bin, a.tls);

  mkdirMode(confDir, 0o750);
  mkdirMode(a.dataDir, 0o750);
  mkdirMode(join(a.dataDir, 'evidence'), 0o750);
  if (owner) {
    for (const d of [a.dataDir, join(a.dataDir, 'evidence')]) chownSync(d, owner.uid, owner.gid);
    chownSync(confDir, owner.uid, owner.gid);
  }
  const created = [`data     ${a.dataDir} (0750)`];
  const tls: TlsResult = a.tls ? await writeTls({ ...a, tls: a.tls }, join(confDir, 'tls'), bin, owner) : { created: [] };
  created.push(...tls.created);

  const secrets = secretsOf(a);
  writeFileAtomic(secretsFile, secretsText(secrets), 0o600);
  created.push(`secrets  ${secretsFile} (0600: ${Object.keys(secrets).join(', ') || 'none'})`);
  writeFileAtomic(a.out, configText(a, tls.yaml, secretsFile, Object.keys(secrets)), 0o644);
  created.unshift(`config   ${a.out}`);

  // The check the agent runs at start, with the environment systemd will give it.
  let problems: ConfigProblem[] = [];
  let total = 0;
  try {
    await loadConfigFile(a.out, { ...secrets });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const pending = (p: ConfigProblem) => tls.pendingCert !== undefined && isPendingCertProblem(p);
    problems = err.problems.filter((p) => !pending(p));
    total = err.total - (err.problems.length - problems.length);
  }
  io.stdout(`provisioned ${a.site}/${a.deviceId} with ${a.cameras.length} camera(s):\n${created.map((c) => `  ${c}\n`).join('')}`);
  if (problems.length > 0) {
    io.stderr(`${formatProblems(problems, total)}\n${total} problem(s) found in ${a.out}: fix them, then run roadside-agent config check ${a.out}\n`);
    return EXIT.CONFIG;
  }
  const steps: string[] = [];
  if (tls.pendingCert && tls.csrFile) {
    steps.push(
      `Send ${tls.csrFile} to the control center; install the signed certificate as ${tls.pendingCert}${tls.yaml?.ca ? '' : ' (and the center CA as tls/ca.pem with mqtt.tls.ca, unless the system CAs sign the broker)'}`,
    );
  }
  steps.push(`Check the box: roadside-agent doctor --config ${a.out}`);
  steps.push('Start the agent: systemctl enable --now roadside-agent (or systemctl restart roadside-agent)');
  io.stdout(`config check: ok${tls.pendingCert ? ` (client certificate ${basename(tls.pendingCert)} pending)` : ''}\nNext steps:\n${steps.map((s, i) => `  ${i + 1}. ${s}\n`).join('')}`);
  return EXIT.OK;
}
