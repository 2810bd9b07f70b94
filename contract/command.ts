// The envelope of every command: request parsing rules, the response shape and its stable error codes.
// The commands themselves (arguments, results, summaries) are the catalogue in contract/commands.ts.
import { z } from 'zod';

/** Largest accepted command payload, bytes. Larger requests get a PAYLOAD_TOO_LARGE error response. */
export const COMMAND_MAX_BYTES = 64 * 1024;

/** Stable error codes of command responses. Handlers may add their own (AgentError codes, e.g. BUSY). */
export const COMMAND_ERROR_CODES = [
  'BAD_JSON',
  'BAD_REQUEST',
  'INVALID_ARGS',
  'UNKNOWN_COMMAND',
  'PAYLOAD_TOO_LARGE',
  'HANDLER_FAILED',
  'TIMEOUT',
  /** The handler's result did not match the command's result schema: it is withheld (the handler did run). */
  'RESULT_INVALID',
  /** The MQTT 5 Response Topic is outside the reply namespace: the command was not run. */
  'RESPONSE_TOPIC_REFUSED',
] as const;
export type CommandErrorCode = (typeof COMMAND_ERROR_CODES)[number];

export const CorrelationId = z
  .union([z.string().max(128), z.number().int()])
  .describe('Caller-chosen request id, echoed in the response (zigbee2mqtt "transaction" style)');

/**
 * `{base}/cmd/{name}` request: a JSON object (an empty payload counts as `{}`) with an optional `id`;
 * the other keys are the command's arguments, validated by the command's own schema.
 * MQTT 5: Correlation Data is echoed; a Response Topic is honoured inside the reply namespace only
 * (contract/topics.ts isPermittedResponseTopic). A retained request is never executed.
 */
export const CommandRequest = z
  .looseObject({ id: CorrelationId.optional() })
  .describe('Command request: optional id plus the command arguments');
export type CommandRequest = z.infer<typeof CommandRequest>;

export const CommandOk = z
  .strictObject({
    status: z.literal('ok'),
    data: z.unknown().describe('Command result, valid against the command\'s result schema'),
    id: CorrelationId.optional(),
  })
  .describe('Successful command response');

export const CommandError = z
  .strictObject({
    status: z.literal('error'),
    error: z.strictObject({
      code: z.string().describe(`Stable error code: ${COMMAND_ERROR_CODES.join(', ')}, or a handler's own`),
      message: z.string().describe('Human-readable explanation'),
    }),
    id: CorrelationId.optional(),
  })
  .describe('Failed command response: nothing was changed, except with RESULT_INVALID (the command ran; its result was withheld)');

/**
 * Response on the request's MQTT 5 Response Topic when it is in the reply namespace, else on
 * `{base}/cmd/{name}/result`; not retained, QoS 1.
 */
export const CommandResponse = z.discriminatedUnion('status', [CommandOk, CommandError]).describe('Command response');
export type CommandResponse = z.infer<typeof CommandResponse>;

/** An error response, with the request's id when it had one. */
export function commandError(code: string, message: string, id?: string | number): CommandResponse {
  const error = { code, message };
  return id === undefined ? { status: 'error', error } : { status: 'error', error, id };
}

/** The error of a request whose MQTT 5 Response Topic is outside the reply namespace (`ownReply`: the device's `{base}/reply`). */
export function responseTopicRefused(topic: string, ownReply: string, id?: string | number): CommandResponse {
  const message = `response topic "${topic}" is outside the reply namespace ({prefix}/_center/{id}/reply[/…] or ${ownReply}[/…]); the command was not run`;
  return commandError('RESPONSE_TOPIC_REFUSED', message, id);
}
