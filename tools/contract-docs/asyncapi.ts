// docs/asyncapi.yaml: the contract as an AsyncAPI 3.0 document (channels, operations, messages with examples).
import { COMMANDS, COMMAND_NAMES, type CommandName } from '../../contract/commands.js';
import { CONTRACT_VERSION, TOPICS, type TopicName, type TopicSpec } from '../../contract/topics.js';
import { EXAMPLES, type Example } from './examples.js';
import { schemaDocs } from './schemas.js';

const PARAMS: Record<string, { description: string; default?: string; examples?: string[] }> = {
  prefix: { description: 'mqtt.topic_prefix of the agent config', default: 'roadside', examples: ['roadside'] },
  site: { description: 'device.site of the agent config', examples: ['a7-north'] },
  device: { description: 'device.id of the agent config', examples: ['box-0042'] },
  camera: { description: 'Camera id (cameras[].id)', examples: ['cam1'] },
  name: { description: 'Command name; the catalogue\'s are listed, the birth message lists what a box accepts', examples: COMMAND_NAMES },
};

function address(pattern: string): string {
  return pattern.replace('{base}', '{prefix}/{site}/{device}');
}

/** The AsyncAPI document; `schemas`: the draft-07 JSON Schemas keyed by schema file base name. */
export function asyncApiDoc(schemas: Map<string, Record<string, unknown>>): Record<string, unknown> {
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};
  const componentSchemas: Record<string, unknown> = {};
  const docs = schemaDocs();
  for (const d of docs) componentSchemas[d.component] = schemas.get(d.file);

  const mqttMessage = { mqtt: { payloadFormatIndicator: 1, contentType: 'application/json', bindingVersion: '0.2.0' } };
  const message = (key: string, title: string, summary: string, schema: string, examples: Example<unknown>[]): void => {
    messages[key] = {
      name: key,
      title,
      summary,
      contentType: 'application/json',
      payload: { $ref: `#/components/schemas/${schema}` },
      ...(examples.length ? { examples: examples.map((e) => ({ name: e.name, summary: e.summary, payload: e.payload })) } : {}),
      bindings: mqttMessage,
    };
  };

  for (const name of Object.keys(TOPICS) as TopicName[]) {
    const t = TOPICS[name] as TopicSpec;
    const addr = address(t.pattern);
    const params = Object.fromEntries([...addr.matchAll(/\{(\w+)\}/g)].map((m) => [m[1] as string, PARAMS[m[1] as string]]));
    const channelMessages: Record<string, unknown> = {};
    const examples = EXAMPLES[name] as (Example<unknown> & { command?: CommandName })[];
    message(name, t.pattern, t.description, name, examples.filter((e) => e.command === undefined || name === 'command' || name === 'command_result'));
    channelMessages[name] = { $ref: `#/components/messages/${name}` };
    if (name === 'command' || name === 'command_result') {
      for (const c of COMMAND_NAMES) {
        const key = `command_${c.replace(/-/g, '_')}${name === 'command_result' ? '_result' : ''}`;
        message(key, `${c} ${name === 'command' ? 'request' : 'response'}`, COMMANDS[c].summary, key, examples.filter((e) => e.command === c));
        channelMessages[key] = { $ref: `#/components/messages/${key}` };
      }
    }
    channels[name] = {
      address: addr,
      title: t.pattern,
      description: t.description,
      parameters: params,
      messages: channelMessages,
    };
    const opName = `${t.direction === 'publish' ? 'send' : 'receive'}${name
      .split('_')
      .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
      .join('')}`;
    const op: Record<string, unknown> = {
      action: t.direction === 'publish' ? 'send' : 'receive',
      channel: { $ref: `#/channels/${name}` },
      title: opName,
      summary: t.description,
      messages: Object.keys(channelMessages).map((m) => ({ $ref: `#/channels/${name}/messages/${m}` })),
      bindings: { mqtt: { qos: t.qos, retain: t.retained, bindingVersion: '0.2.0' } },
    };
    if (name === 'command') {
      op.reply = {
        address: {
          description:
            'The MQTT 5 Response Topic of the request when it is in the reply namespace ({prefix}/_center/{id}/reply[/…] or {base}/reply[/…]); else, and without one, {base}/cmd/{name}/result (a Response Topic outside the namespace gets RESPONSE_TOPIC_REFUSED there)',
          location: '$message.header#/responseTopic',
        },
        channel: { $ref: '#/channels/command_result' },
        messages: Object.keys(channelMessages).map((m) => ({ $ref: `#/channels/command_result/messages/${m === 'command' ? 'command_result' : `${m}_result`}` })),
      };
    }
    operations[opName] = op;
  }

  return {
    asyncapi: '3.0.0',
    info: {
      title: 'roadside-agent MQTT contract',
      version: `${CONTRACT_VERSION}.0.0`,
      description: [
        'MQTT 5 interface of a roadside-agent box (an edge agent beside traffic cameras) towards the provincial control center.',
        'Operations are described from the agent: "send" is what a box publishes, "receive" what it accepts.',
        `Events carry a per-device seq shared with health messages (one outbox); delivery is at-least-once (QoS 1), duplicates are dropped by id.`,
        'Generated by tools/contract-docs/generate.ts from the zod schemas; do not edit.',
      ].join('\n'),
      license: { name: 'Apache-2.0' },
    },
    defaultContentType: 'application/json',
    servers: {
      center: {
        host: 'mqtt.center.example.invalid:8883',
        protocol: 'secure-mqtt',
        protocolVersion: '5',
        description: 'The provincial broker (TLS; the agent always verifies the broker certificate; mutual TLS optional)',
        bindings: {
          mqtt: {
            cleanSession: true,
            keepAlive: 30,
            sessionExpiryInterval: 0,
            lastWill: { topic: '{prefix}/{site}/{device}/status', qos: 1, retain: true, message: '{"state":"offline","session":N,"ts":"…"}' },
            bindingVersion: '0.2.0',
          },
        },
      },
    },
    channels,
    operations,
    components: { schemas: componentSchemas, messages },
  };
}
