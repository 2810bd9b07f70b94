// secrets.env beside the config: the variables systemd's EnvironmentFile= gives the agent. The technician's
// shell does not have them, so doctor reads the file to see what the service sees.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The secrets file `provision` writes beside the config file. */
export const secretsFileFor = (configFile: string): string => join(dirname(configFile), 'secrets.env');

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
  /** Variables read from the file; empty when it is absent or unreadable. */
  vars: Record<string, string>;
  /** ENOENT, EACCES…; null when read. */
  error: string | null;
}

export function readSecretsEnv(configFile: string): SecretsEnv {
  const file = secretsFileFor(configFile);
  try {
    return { file, vars: parseEnvFile(readFileSync(file, 'utf8')), error: null };
  } catch (err) {
    return { file, vars: {}, error: (err as NodeJS.ErrnoException).code ?? 'unreadable' };
  }
}
