// `roadside-agent center config push|get`: a box's config from the center, over the broker (MQTT 5 request /
// response in the center's reply namespace; MQTT 3.1.1 answers come on {base}/cmd/{name}/result). The device's
// site and current config hash come from its retained birth. A push is checked on the box exactly like `config
// check` (relative paths and env secrets are the box's), applied there, and watched through its probation until
// the birth says confirmed or rolled back. Secrets never travel: see the config-apply command's summary.
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { formatProblem, problemSummary, ConfigError } from '../config/loader.js';
import { decodeConfigText, readConfigBytes } from '../config/read.js';
import { BirthPayload } from '../contract/birth.js';
import { CommandResponse } from '../contract/command.js';
import { COMMANDS, CONFIG_PUSH_MAX_CHARS, type CommandName, type CommandResult } from '../contract/commands.js';
import { centerReplyTopic, topicsFor } from '../contract/topics.js';
import type { CliIo } from '../core/cli-io.js';
import { AgentError, errorMessage, EXIT } from '../core/errors.js';
import { createLogger, type Logger, type LogLevel } from '../core/log.js';
import { BrokerConnection } from './connection.js';

export interface CenterConfigOptions {
  /** Broker URL (mqtt://, mqtts://, ws://, wss://), or the nodes of a cluster (see ConnectionOptions.url). */
  url: string | readonly string[];
  /** 5 (default) or 4 (MQTT 3.1.1). */
  protocol?: 4 | 5 | undefined;
  /** Topic prefix of the fleet. Default roadside. */
  prefix?: string | undefined;
  /** DEVICE, or SITE/DEVICE; with DEVICE alone the site comes from the device's retained birth. */
  device: string;
  username?: string | undefined;
  /** The CLI takes it from env ROADSIDE_CENTER_PASSWORD, never from an argument. */
  password?: string | undefined;
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  client_id?: string | undefined;
  /** Longest wait for the birth and for each answer, seconds. Default 30. */
  timeout_s?: number | undefined;
  /** Logs on stderr. Default warn. */
  log_level?: LogLevel | undefined;
}

export interface ConfigPushOptions extends CenterConfigOptions {
  /** The new config: a whole YAML file, or with `patch` a JSON merge patch (RFC 7396). */
  file: string;
  patch?: boolean | undefined;
  /** Only check it on the box: every problem, nothing changed. */
  dry_run?: boolean | undefined;
  /** The config the change was made from. Default: config_hash of the device's retained birth. */
  base_hash?: string | undefined;
  /** Wait for the end of the probation (confirmed / rolled back). Default true. */
  wait?: boolean | undefined;
}

interface Birth {
  site: string;
  config_hash: string;
  config?: BirthPayload['config'];
}

/** One device, reached through the broker: its births and the answers to our requests (also used by evidence-get.ts). */
export class DeviceLink {
  private readonly births: Birth[] = [];
  private readonly answers = new Map<string, CommandResponse>();
  private readonly waiters = new Set<() => void>();
  private readonly idPrefix = randomBytes(4).toString('hex');
  private counter = 0;
  private connection: BrokerConnection | undefined;
  readonly site: string | undefined;
  readonly device: string;

  constructor(
    private readonly o: CenterConfigOptions,
    private readonly log: Logger,
  ) {
    const parts = o.device.split('/');
    if (parts.length > 2 || parts.some((p) => !/^[a-z0-9][a-z0-9_-]{0,62}$/.test(p))) {
      throw new AgentError('USAGE', `--device must be DEVICE or SITE/DEVICE (lowercase letters, digits, "-" and "_"), got "${o.device}"`);
    }
    this.site = parts.length === 2 ? parts[0] : undefined;
    this.device = parts[parts.length - 1]!;
  }

  private get prefix(): string {
    return this.o.prefix ?? 'roadside';
  }

  async connect(): Promise<void> {
    const clientId = this.o.client_id ?? `roadside-center-config-${this.idPrefix}`;
    const protocol = this.o.protocol ?? 5;
    const reply = protocol === 5 ? centerReplyTopic(this.prefix, clientId) : null;
    const base = `${this.prefix}/${this.site ?? '+'}/${this.device}`;
    const filters = { [`${base}/birth`]: { qos: 1 as const }, ...(reply ? { [reply]: { qos: 1 as const } } : { [`${base}/cmd/+/result`]: { qos: 1 as const } }) };
    const tls = this.o.ca || this.o.cert ? { ca: this.o.ca, cert: this.o.cert, key: this.o.key } : undefined;
    this.connection = new BrokerConnection(
      { url: this.o.url, protocol, client_id: clientId, username: this.o.username, password: this.o.password, tls, session_expiry_s: 0, receive_maximum: 16, filters, reply_topic: reply },
      (topic, payload, packet) => this.onMessage(topic, payload, packet.correlationData),
      this.log,
    );
    await this.connection.start();
  }

  async close(): Promise<void> {
    await this.connection?.stop();
  }

  /** How many births were seen so far: `birth(…, since)` then looks only at the ones after. */
  mark(): number {
    return this.births.length;
  }

  /** The latest birth (after the first `since`) that satisfies `accept`, waiting up to `timeoutMs` for one. */
  birth(timeoutMs: number, accept: (b: Birth) => boolean = () => true, since = 0): Promise<Birth | undefined> {
    return this.until(() => this.births.slice(since).reverse().find(accept), timeoutMs);
  }

  /** Sends a command and waits for its answer. */
  async request<N extends CommandName>(name: N, args: Record<string, unknown>, site: string, timeoutMs: number): Promise<CommandResponse> {
    const id = `${this.idPrefix}-${++this.counter}`;
    const topics = topicsFor(`${this.prefix}/${site}/${this.device}`);
    this.connection?.sendCommand(topics.command(name), { id, ...args });
    const answer = await this.until(() => this.answers.get(id), timeoutMs);
    this.answers.delete(id); // a fetch asks thousands of times: keep only what is awaited
    if (!answer) throw new AgentError('NO_ANSWER', `no answer to ${name} from ${site}/${this.device} within ${Math.round(timeoutMs / 1000)} s (is it online?)`);
    return answer;
  }

  private until<T>(find: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
    return new Promise((resolve) => {
      const check = (): void => {
        const v = find();
        if (v === undefined) return;
        done(v);
      };
      const done = (v: T | undefined): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(v);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  private onMessage(topic: string, payload: Buffer, correlation: Buffer | undefined): void {
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    const levels = topic.split('/');
    if (levels.length === 4 && levels[3] === 'birth' && levels[2] === this.device) {
      const b = BirthPayload.safeParse(body);
      if (b.success) this.births.push({ site: levels[1]!, config_hash: b.data.config_hash, ...(b.data.config ? { config: b.data.config } : {}) });
      else this.log.warn({ topic }, 'birth that does not match the contract: ignored');
    } else {
      const r = CommandResponse.safeParse(body);
      const id = correlation?.toString('utf8') ?? (r.success ? r.data.id : undefined);
      if (r.success && id !== undefined) this.answers.set(String(id), r.data);
    }
    for (const w of [...this.waiters]) w();
  }
}

function logger(o: CenterConfigOptions): Logger {
  return createLogger({ level: o.log_level ?? 'warn', destination: pino.destination({ fd: 2, sync: true }) });
}

/** Connects, finds the device's birth (its site and config), runs `fn`, disconnects. Errors become exit codes. */
async function withDevice(o: CenterConfigOptions, io: CliIo, what: string, fn: (link: DeviceLink, birth: Birth, timeoutMs: number) => Promise<number>): Promise<number> {
  const timeoutMs = (o.timeout_s ?? 30) * 1000;
  let link: DeviceLink | undefined;
  try {
    link = new DeviceLink(o, logger(o));
    await link.connect();
    const birth = await link.birth(timeoutMs);
    if (!birth) throw new AgentError('NO_BIRTH', `no birth from device "${o.device}" under ${o.prefix ?? 'roadside'}/ within ${o.timeout_s ?? 30} s: unknown device, or it never connected`);
    return await fn(link, birth, timeoutMs);
  } catch (err) {
    const code = err instanceof AgentError ? err.code : undefined;
    io.stderr(`roadside-agent center config ${what}: ${errorMessage(err)}\n`);
    return code === 'USAGE' ? EXIT.USAGE : code === 'CONFIG_INVALID' ? EXIT.CONFIG : EXIT.FATAL;
  } finally {
    await link?.close();
  }
}

/** The ok data of a response, checked against the command's result schema; an error response throws it. */
function resultOf<N extends 'config-get' | 'config-apply'>(name: N, r: CommandResponse): CommandResult<N> {
  if (r.status === 'error') throw new AgentError(r.error.code, `${r.error.code}: ${r.error.message}`);
  const data = COMMANDS[name].result.safeParse(r.data);
  if (!data.success) throw new AgentError('BAD_ANSWER', `the ${name} answer does not match the contract`);
  return data.data as CommandResult<N>;
}

/** `center config get --device D`: the running config on stdout (secrets redacted), its hashes as comments first. */
export function configGet(o: CenterConfigOptions, io: CliIo): Promise<number> {
  return withDevice(o, io, 'get', async (link, birth, timeoutMs) => {
    const r = resultOf('config-get', await link.request('config-get', {}, birth.site, timeoutMs));
    const header = [`# ${birth.site}/${link.device}: config ${r.hash}, applied ${r.applied_at}`, `# previous good config: ${r.previous_hash ?? 'none'}`];
    if (r.probation_until) header.push(`# on probation until ${r.probation_until}`);
    if (r.last_rollback) header.push(`# last rollback ${r.last_rollback.at} from ${r.last_rollback.from_hash}: ${r.last_rollback.reason}`);
    io.stdout(`${header.join('\n')}\n${r.yaml.endsWith('\n') ? r.yaml : `${r.yaml}\n`}`);
    return EXIT.OK;
  });
}

async function readPush(o: ConfigPushOptions): Promise<{ yaml: string } | { patch: Record<string, unknown> }> {
  let text: string;
  try {
    text = decodeConfigText(await readConfigBytes(o.file), o.file);
  } catch (err) {
    if (err instanceof ConfigError) throw new AgentError('USAGE', err.problems.map(formatProblem).join('\n'));
    throw err;
  }
  if (!o.patch) {
    if (text.length > CONFIG_PUSH_MAX_CHARS) throw new AgentError('USAGE', `${o.file} has ${text.length} characters: a pushed config holds at most ${CONFIG_PUSH_MAX_CHARS}`);
    return { yaml: text };
  }
  let patch: unknown;
  try {
    patch = JSON.parse(text);
  } catch (err) {
    throw new AgentError('USAGE', `${o.file} is not JSON: ${errorMessage(err)}`);
  }
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) throw new AgentError('USAGE', `${o.file}: a merge patch is a JSON object`);
  return { patch: patch as Record<string, unknown> };
}

/**
 * `center config push --device D FILE [--dry-run]`: 0 when valid (dry run) or applied and confirmed; 78 when the
 * box finds problems (printed as `config check` prints them, with FILE); 1 when refused (stale base, secrets),
 * rolled back, or without an answer.
 */
export function configPush(o: ConfigPushOptions, io: CliIo): Promise<number> {
  return withDevice(o, io, 'push', async (link, birth, timeoutMs) => {
    const body = await readPush(o);
    const where = `${birth.site}/${link.device}`;
    const since = link.mark(); // the outcome is in a birth published after the request
    const r = resultOf('config-apply', await link.request('config-apply', { ...body, base_hash: o.base_hash ?? birth.config_hash, dry_run: o.dry_run ?? false }, birth.site, timeoutMs));
    const changes = r.changes.map((c) => `  - ${c}\n`).join('');
    switch (r.outcome) {
      case 'invalid': {
        const problems = r.problems.map((p) => formatProblem({ file: o.file, ...p }));
        if (r.problems_total !== undefined && r.problems_total > r.problems.length) problems.push(`… and ${r.problems_total - r.problems.length} more`);
        io.stderr(`${problems.join('\n')}\n${problemSummary(new ConfigError([], r.problems_total ?? r.problems.length), o.file)} (checked on ${where})\n`);
        return EXIT.CONFIG;
      }
      case 'valid':
        io.stdout(`${where}: ${o.file} is valid (config ${r.hash ?? '?'} from ${r.base_hash})${r.restart ? `; applying it restarts the agent (${r.restart})` : ''}\n${changes}`);
        return EXIT.OK;
      case 'unchanged':
        io.stdout(`${where}: already runs config ${r.hash ?? r.base_hash}\n`);
        return EXIT.OK;
      case 'applied':
        break;
    }
    const hash = r.hash ?? '';
    io.stdout(`${where}: config ${hash} applied ${r.restart ? `by a restart (${r.restart})` : 'in place'}\n${changes}`);
    if (o.wait === false) return EXIT.OK;
    // Probation (its length is the box's; after a restart it starts again), plus the answer timeout as a margin.
    const probationMs = r.probation_until ? Math.max(0, Date.parse(r.probation_until) - Date.now()) : 3_600_000;
    const rolledBack = (b: Birth): boolean => b.config_hash !== hash && b.config?.last_rollback?.from_hash === hash;
    const confirmed = (b: Birth): boolean => b.config_hash === hash && b.config !== undefined && !b.config.probation_until;
    const outcome = await link.birth(probationMs + timeoutMs, (b) => rolledBack(b) || confirmed(b), since);
    if (!outcome) {
      io.stderr(`${where}: no probation outcome seen for ${hash}; ask again with config get\n`);
      return EXIT.FATAL;
    }
    if (rolledBack(outcome)) {
      io.stderr(`${where}: config ${hash} rolled back to ${outcome.config_hash}: ${outcome.config?.last_rollback?.reason ?? 'no reason given'}\n`);
      return EXIT.FATAL;
    }
    io.stdout(`${where}: config ${hash} confirmed (probation passed)\n`);
    return EXIT.OK;
  });
}
