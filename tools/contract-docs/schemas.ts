// The JSON Schemas of the contract: one per topic payload and two per command (request, response), converted
// from the zod schemas the agent validates with.
import { z } from 'zod';
import { COMMAND_NAMES, commandRequestSchema, commandResponseSchema } from '../../contract/commands.js';
import { WireEventSchema } from '../../contract/event.js';
import { HealthMessage } from '../../contract/health.js';
import { DeliveryFields, TOPICS, type TopicName, type TopicSpec } from '../../contract/topics.js';
import { AgentError } from '../../core/errors.js';

export class ContractDocsError extends AgentError {
  constructor(message: string) {
    super('CONTRACT_DOCS', message);
  }
}

/**
 * Topics whose TOPICS entry only names the delivery fields (`DeliveryFields`, a loose object): the documents use
 * the full message schema, which contains those fields (checked by exampleProblems).
 */
export const FULL_MESSAGE: Partial<Record<TopicName, z.ZodType>> = {
  events: WireEventSchema,
  health: HealthMessage,
};

/** The schema of a topic's payload as documented: the TOPICS schema, or the full message for outbox topics. */
export function payloadSchema(name: TopicName): z.ZodType {
  const spec: TopicSpec = TOPICS[name];
  if (spec.schema !== DeliveryFields) return spec.schema;
  const full = FULL_MESSAGE[name];
  if (!full) throw new ContractDocsError(`topic "${name}" only has the DeliveryFields schema and no full message schema in tools/contract-docs/schemas.ts`);
  return full;
}

export const SCHEMA_HOST = 'https://roadside-agent.invalid/schemas';

export const kebab = (s: string): string => s.replace(/_/g, '-');

export interface SchemaDoc {
  /** File base name (docs/schemas/<file>.schema.json) and AsyncAPI component name. */
  file: string;
  component: string;
  title: string;
  schema: z.ZodType;
  io: 'input' | 'output';
}

export function schemaDocs(): SchemaDoc[] {
  const out: SchemaDoc[] = [];
  for (const name of Object.keys(TOPICS) as TopicName[]) {
    const spec: TopicSpec = TOPICS[name];
    out.push({ file: kebab(name), component: name, title: `${spec.pattern} payload`, schema: payloadSchema(name), io: spec.direction === 'subscribe' ? 'input' : 'output' });
  }
  for (const c of COMMAND_NAMES) {
    const id = c.replace(/-/g, '_');
    out.push({ file: `command-${c}`, component: `command_${id}`, title: `${c} request`, schema: commandRequestSchema(c), io: 'input' });
    out.push({ file: `command-${c}-result`, component: `command_${id}_result`, title: `${c} response`, schema: commandResponseSchema(c), io: 'output' });
  }
  return out;
}

export function jsonSchema(d: SchemaDoc, target: 'draft-2020-12' | 'draft-7'): Record<string, unknown> {
  return z.toJSONSchema(d.schema, { target, io: d.io, unrepresentable: 'throw' });
}
