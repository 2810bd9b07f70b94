// The command registry: runs the handlers of a command catalogue (contract/commands.ts) for `{base}/cmd/{name}`
// requests. Arguments are validated with the command's args schema, and results with its result schema before
// anything is sent: a handler that returns something off-contract yields RESULT_INVALID, never the payload.
import type { z } from 'zod';
import { COMMAND_MAX_BYTES, CorrelationId, commandError, type CommandResponse } from '../../contract/command.js';
import type { CommandCatalogue, CommandSpec, Commands } from '../../contract/commands.js';
import { AgentError, errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { withTimeout } from '../../core/time.js';
import { formatIssues } from '../../core/zod-issues.js';

export interface CommandContext {
  /** Command name (topic level). */
  name: string;
  /** The request's correlation id, if any. */
  id: string | number | undefined;
  log: Logger;
}

/** A handler of command S: gets the parsed arguments, must return (a promise of) the command's result type. */
export type CommandHandler<S extends CommandSpec> = (args: z.output<S['args']>, ctx: CommandContext) => z.input<S['result']> | Promise<z.input<S['result']>>;

type AnyHandler = (args: unknown, ctx: CommandContext) => unknown;

/** Something that answers requests: the registry, as the MQTT command transport sees it. */
export interface CommandDispatcher {
  execute(name: string, payload: Buffer): Promise<CommandResponse>;
}

const NAME = /^[a-z][a-z0-9-]{0,62}$/;
const DEFAULT_TIMEOUT_MS = 30_000;

type Parsed = { ok: true; id: string | number | undefined; args: Record<string, unknown> } | { ok: false; response: CommandResponse };

/** A request payload: a JSON object (an empty payload counts as `{}`) with an optional `id`; the rest are the arguments. */
export function parseRequest(payload: Buffer): Parsed {
  if (payload.length > COMMAND_MAX_BYTES) {
    return { ok: false, response: commandError('PAYLOAD_TOO_LARGE', `payload of ${payload.length} bytes exceeds the ${COMMAND_MAX_BYTES}-byte limit`) };
  }
  const text = payload.toString('utf8').trim();
  let body: unknown = {};
  if (text !== '') {
    try {
      body = JSON.parse(text);
    } catch (err) {
      return { ok: false, response: commandError('BAD_JSON', `payload is not valid JSON: ${errorMessage(err)}`) };
    }
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, response: commandError('BAD_REQUEST', 'payload must be a JSON object (or empty)') };
  }
  const { id: rawId, ...args } = body as Record<string, unknown>;
  const id = CorrelationId.optional().safeParse(rawId);
  if (!id.success) return { ok: false, response: commandError('BAD_REQUEST', 'id must be a string (at most 128 characters) or an integer') };
  return { ok: true, id: id.data, args };
}

/** The request's id when the payload has a valid one (for answering a request that is refused before it is parsed). */
export function requestId(payload: Buffer): string | number | undefined {
  const r = parseRequest(payload);
  return r.ok ? r.id : undefined;
}

export class CommandRegistry<C extends CommandCatalogue> implements CommandDispatcher {
  private readonly handlers = new Map<string, AnyHandler>();

  constructor(
    readonly catalogue: C,
    private readonly log: Logger,
    private readonly timeoutMs = DEFAULT_TIMEOUT_MS,
  ) {}

  /**
   * Adds the handler of a catalogue command. Its result must match the command's result schema (checked by the
   * compiler, and again at run time); throwing an AgentError answers with its `code`.
   */
  register<N extends keyof C & string>(name: N, handler: CommandHandler<C[N]>): void {
    if (!NAME.test(name)) throw new AgentError('COMMAND_NAME_INVALID', `invalid command name "${name}" (lowercase letters, digits and "-")`);
    if (!Object.hasOwn(this.catalogue, name)) throw new AgentError('COMMAND_NOT_IN_CATALOGUE', `command "${name}" is not in the command catalogue`);
    if (this.handlers.has(name)) throw new AgentError('COMMAND_EXISTS', `command "${name}" is already registered`);
    this.handlers.set(name, handler as AnyHandler);
  }

  unregister(name: keyof C & string): boolean {
    return this.handlers.delete(name);
  }

  /** Registered command names, sorted (the birth's `commands`). */
  names(): string[] {
    return [...this.handlers.keys()].sort();
  }

  has(name: string): boolean {
    return this.handlers.has(name);
  }

  /** Parses, validates and runs one request. Never throws: every failure is an error response. */
  async execute(name: string, payload: Buffer): Promise<CommandResponse> {
    const req = parseRequest(payload);
    if (!req.ok) return req.response;
    const { id, args } = req;
    const handler = this.handlers.get(name);
    const spec = handler && this.catalogue[name];
    if (!handler || !spec) return commandError('UNKNOWN_COMMAND', `unknown command "${name.slice(0, 64)}"; known: ${this.names().join(', ')}`, id);
    const parsed = spec.args.safeParse(args);
    if (!parsed.success) return commandError('INVALID_ARGS', formatIssues(parsed.error), id);
    let data: unknown;
    try {
      const run = Promise.resolve().then(() => handler(parsed.data, { name, id, log: this.log }));
      data = await withTimeout(run, this.timeoutMs, `command "${name}"`);
    } catch (err) {
      if (err instanceof AgentError) return commandError(err.code, err.message, id);
      this.log.error({ err, command: name }, 'command handler failed');
      return commandError('HANDLER_FAILED', errorMessage(err), id);
    }
    const result = spec.result.safeParse(data);
    if (!result.success) {
      const problems = formatIssues(result.error);
      this.log.error({ command: name, problems }, 'command result does not match its schema: not sent');
      return commandError('RESULT_INVALID', `the result of "${name}" does not match its schema (${problems}); it was withheld`, id);
    }
    try {
      JSON.stringify(result.data ?? null); // a result that cannot be serialized is the handler's failure
    } catch (err) {
      this.log.error({ err, command: name }, 'command result cannot be serialized');
      return commandError('HANDLER_FAILED', errorMessage(err), id);
    }
    return id === undefined ? { status: 'ok', data: result.data ?? null } : { status: 'ok', data: result.data ?? null, id };
  }
}

/** The agent's registry: typed by the command catalogue. */
export type AgentCommands = CommandRegistry<Commands>;
