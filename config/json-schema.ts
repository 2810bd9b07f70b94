import { z } from 'zod';
import { ConfigSchema } from './schema/index.js';

/** JSON Schema of the config file (what a user writes, defaults optional) for editors and the center. */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(ConfigSchema, { io: 'input', target: 'draft-2020-12' }),
    $id: 'https://roadside-agent.invalid/config.schema.json',
    title: 'roadside-agent configuration',
  };
}

export const configJsonSchemaText = (): string => `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
