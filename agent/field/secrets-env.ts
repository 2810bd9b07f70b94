// secrets.env beside the config: the variables systemd's EnvironmentFile= gives the agent. A technician's shell
// does not have them, so `run` and `doctor` read the file themselves, the same way: --env-file FILE, else
// secrets.env beside the config when it is there; a variable already in the process environment wins.
import { readFileSync } from 'node:fs';
import { secretsFileFor } from './locations.js';

export { secretsFileFor } from './locations.js';

/**
 * Parses `NAME=value` lines as systemd's EnvironmentFile= and a POSIX shell read what `provision` writes:
 * 'single quotes' literal, "double quotes" with \\ \" \$ \` escapes, bare values trimmed; # comments, blank lines.
 */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    const name = m[1]!;
    const rest = m[2]!;
    let value: string;
    if (rest.startsWith("'")) {
      const end = rest.indexOf("'", 1);
      value = end < 0 ? rest.slice(1) : rest.slice(1, end);
    } else if (rest.startsWith('"')) {
      value = '';
      for (let i = 1; i < rest.length; i++) {
        const c = rest[i]!;
        if (c === '\\' && i + 1 < rest.length) value += rest[++i];
        else if (c === '"') break;
        else value += c;
      }
    } else {
      value = rest.replace(/\s+#.*$/, '').trim();
    }
    out[name] = value;
  }
  return out;
}

export interface SecretsEnv {
  file: string;
  /** True when the file was named with --env-file (then it must be readable). */
  explicit: boolean;
  /** Variables read from the file; empty when it is absent or unreadable. */
  vars: Record<string, string>;
  /** ENOENT, EACCES…; null when read. */
  error: string | null;
}

/** `envFile` (--env-file), else secrets.env beside `configFile`. */
export function readSecretsEnv(configFile: string, envFile?: string): SecretsEnv {
  const file = envFile ?? secretsFileFor(configFile);
  const explicit = envFile !== undefined;
  try {
    return { file, explicit, vars: parseEnvFile(readFileSync(file, 'utf8')), error: null };
  } catch (err) {
    return { file, explicit, vars: {}, error: (err as NodeJS.ErrnoException).code ?? 'unreadable' };
  }
}

/** The environment a command loads its config with: the file's variables under the process environment's. */
export function withSecrets(env: NodeJS.ProcessEnv, secrets: SecretsEnv): NodeJS.ProcessEnv {
  return { ...secrets.vars, ...env };
}

/** A problem worth stopping for: an --env-file that cannot be read (an absent default file is no problem). */
export function secretsProblem(secrets: SecretsEnv): string | undefined {
  return secrets.explicit && secrets.error !== null ? `--env-file ${secrets.file}: cannot read it (${secrets.error})` : undefined;
}
