// The status page's files: public/ (index.html, app.js, …) and jsmpeg's player from its npm package, and the
// content security policy they are served under.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../../core/paths.js';

/** jsmpeg (@cycjimmy/jsmpeg-player, ES module build): `npm run build` copies it into dist/…/public/. */
export const PLAYER_FILE = 'jsmpeg-player.esm.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};
const NAME = /^[a-z0-9][a-z0-9._-]*\.(html|js|css|svg|png|ico)$/i;

/** `public/` next to this module (sources, dist/), else agent/status/public in the package. */
export function defaultPublicDir(): string {
  const here = join(dirname(fileURLToPath(import.meta.url)), 'public');
  if (existsSync(join(here, 'index.html'))) return here;
  return join(packageRoot(), 'agent', 'status', 'public');
}

/** The player: the build's copy in `publicDir`, else the installed package (running from sources). */
function playerPath(publicDir: string): string | undefined {
  const copy = join(publicDir, PLAYER_FILE);
  if (existsSync(copy)) return copy;
  try {
    // The package's "require" entry is dist/jsmpeg-player.cjs; the ES module build sits beside it.
    return join(dirname(createRequire(import.meta.url).resolve('@cycjimmy/jsmpeg-player')), PLAYER_FILE);
  } catch {
    return undefined;
  }
}

function csp(styleHashes: string[]): string {
  return [
    "default-src 'self'",
    "img-src 'self' blob: data:",
    "script-src 'self'",
    ["style-src 'self'", ...styleHashes.map((h) => `'sha256-${h}'`)].join(' '),
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
}

/**
 * The style sheet jsmpeg's module adds to the page when it loads (`styleInject(css_…)`, for its own video
 * element, unused here). Allowed by its hash rather than by 'unsafe-inline'; without it the page still plays,
 * the browser only reports the refused style.
 */
export function injectedStyleHash(playerSource: string): string | undefined {
  const m = /\bvar css_\w+ = ("(?:[^"\\]|\\.)*");/.exec(playerSource);
  if (!m) return undefined;
  try {
    return createHash('sha256').update(JSON.parse(m[1]!) as string, 'utf8').digest('base64');
  } catch {
    return undefined;
  }
}

const EMPTY_STYLE_HASH = createHash('sha256').update('').digest('base64');

export interface StaticFile {
  body: Buffer;
  type: string;
}

/** Reads and caches the page's files (they never change while the agent runs). */
export class StaticFiles {
  private readonly cache = new Map<string, StaticFile>();
  private policy = csp([]);

  constructor(private readonly publicDir: string) {}

  /** Reads the player once, for the hash of its style in the policy. */
  async start(): Promise<void> {
    const player = await this.read(PLAYER_FILE);
    const hash = player && injectedStyleHash(player.body.toString('utf8'));
    // The <style> element is added empty and filled after: both states are checked, so the empty one is allowed too.
    this.policy = csp(hash ? [EMPTY_STYLE_HASH, hash] : []);
  }

  /** The Content-Security-Policy header value of the page. */
  get csp(): string {
    return this.policy;
  }

  /** A file by its name under /static/ (or /), undefined when there is none. */
  async read(name: string): Promise<StaticFile | undefined> {
    if (!NAME.test(name)) return undefined;
    const cached = this.cache.get(name);
    if (cached) return cached;
    const path = name === PLAYER_FILE ? playerPath(this.publicDir) : join(this.publicDir, name);
    if (!path) return undefined;
    let body: Buffer;
    try {
      body = await readFile(path);
    } catch {
      return undefined;
    }
    const file = { body, type: TYPES[name.slice(name.lastIndexOf('.')).toLowerCase()] ?? 'application/octet-stream' };
    this.cache.set(name, file);
    return file;
  }
}
