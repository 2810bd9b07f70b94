// Command registry: `{base}/cmd/{name}` requests validated with zod, answered zigbee2mqtt-style.
import { z } from 'zod';
import { AgentError, errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { COMMAND_MAX_BYTES, CorrelationId, type CommandResponse } from '../../contract/command.js';

export interface CommandContext {
  /** Command name (topic level). */
  name: string;
  /** The request's correlation id, if any. */
  id: string | number | undefined;
  log: Logger;
}

export type CommandHandler<S extends z.ZodType> = (args: z.output<S>, ctx: CommandContext) => unknown;

interface Entry {
  schema: z.ZodType;
  handler: (args: unknown, ctx: CommandContext) => unknown;
}

const NAME = /^[a-z][a-z0-9-]{0,62}$/;
const DEFAULT_TIMEOUT_MS = 30_000;

export class CommandRegistry {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly log: Logger,
    private readonly timeoutMs = DEFAULT_TIMEOUT_MS,
  ) {}

  /**
   * Adds a command. `schema` validates the request's arguments (the JSON object without its `id`); use
   * z.strictObject so unknown keys are refused. The handler's result (JSON-serializable) becomes `data`;
   * throwing an AgentError answers with its `code`.
   */
  register<S extends z.ZodType>(name: string, schema: S, handler: CommandHandler<S>): void {
    if (!NAME.test(name)) throw new AgentError('COMMAND_NAME_INVALID', `invalid command name "${name}" (lowercase letters, digits and "-")`);
    if (this.entries.has(name)) throw new AgentError('COMMAND_EXISTS', `command "${name}" is already registered`);
    this.entries.set(name, { schema, handler: handler as (args: unknown, ctx: CommandContext) => unknown });
  }

  unregister(name: string): boolean {
    return this.entries.delete(name);
  }

  names(): string[] {
    return [...this.entries.keys()].sort();
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** Parses, validates and runs one request. Never throws: every failure is an error response. */
  async execute(name: string, payload: Buffer): Promise<CommandResponse> {
    if (payload.length > COMMAND_MAX_BYTES) {
      return fail('PAYLOAD_TOO_LARGE', `payload of ${payload.length} bytes exceeds the ${COMMAND_MAX_BYTES}-byte limit`);
    }
    const text = payload.toString('utf8').trim();
    let body: unknown = {};
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch (err) {
        return fail('BAD_JSON', `payload is not valid JSON: ${errorMessage(err)}`);
      }
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return fail('BAD_REQUEST', 'payload must be a JSON object (or empty)');
    }
    const { id: rawId, ...args } = body as Record<string, unknown>;
    const idParsed = CorrelationId.optional().safeParse(rawId);
    if (!idParsed.success) return fail('BAD_REQUEST', 'id must be a string (at most 128 characters) or an integer');
    const id = idParsed.data;
    const entry = this.entries.get(name);
    if (!entry) return fail('UNKNOWN_COMMAND', `unknown command "${name.slice(0, 64)}"; known: ${this.names().join(', ')}`, id);
    const parsed = entry.schema.safeParse(args);
    if (!parsed.success) return fail('INVALID_ARGS', formatIssues(parsed.error), id);
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new AgentError('TIMEOUT', `command "${name}" did not finish within ${this.timeoutMs} ms`)), this.timeoutMs);
      });
      const run = Promise.resolve().then(() => entry.handler(parsed.data, { name, id, log: this.log }));
      const data: unknown = await Promise.race([run, timeout]);
      JSON.stringify(data ?? null); // a result that cannot be serialized is the handler's failure
      return id === undefined ? { status: 'ok', data: data ?? null } : { status: 'ok', data: data ?? null, id };
    } catch (err) {
      if (err instanceof AgentError) return fail(err.code, err.message, id);
      this.log.error({ err, command: name }, 'command handler failed');
      return fail('HANDLER_FAILED', errorMessage(err), id);
    } finally {
      clearTimeout(timer);
    }
  }
}

function fail(code: string, message: string, id?: string | number): CommandResponse {
  const error = { code, message };
  return id === undefined ? { status: 'error', error } : { status: 'error', error, id };
}

function formatIssues(err: z.ZodError): string {
  return err.issues
    .slice(0, 10)
    .map((i) => {
      const path = i.path.map(String).join('.');
      const msg = i.code === 'unrecognized_keys' ? `unknown key(s) ${i.keys.map((k) => `"${k}"`).join(', ')}` : i.message.replace(/^Invalid input: /, '');
      return path ? `${path}: ${msg}` : msg;
    })
    .join('; ');
}
