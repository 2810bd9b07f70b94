// mqtt.urls (a broker cluster) beside mqtt.url: exactly one of them, every URL checked like url, problems at the
// URL's own line; and the uplink's rotation through the nodes.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BrokerRotation, withoutCredentials } from '../../../agent/uplink/brokers.js';
import { ConfigError, loadConfig, type ConfigProblem } from '../../../config/loader.js';
import { MqttSchema } from '../../../config/schema/mqtt.js';

const CLIP = resolve('tests/fixtures/clips/vtest-20s.mp4');

function configFile(mqtt: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'roadside-mqtt-urls-'));
  const file = join(dir, 'config.yaml');
  writeFileSync(
    file,
    [
      'device: { id: box-1, site: site-1 }',
      'cameras:',
      '  - id: cam1',
      `    url: ${CLIP}`,
      '    frame: { width: 768, height: 576 }',
      'mqtt:',
      mqtt,
      '',
    ].join('\n'),
  );
  return file;
}

const env = (file: string) => ({ ROADSIDE_DATA_DIR: join(dirname(file), 'data') });

function problems(mqtt: string): ConfigProblem[] {
  const file = configFile(mqtt);
  try {
    loadConfig(file, env(file));
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('mqtt.urls', () => {
  it('gives one shape to the code: urls lists every node, url is the first', () => {
    expect(MqttSchema.parse({ url: 'mqtt://127.0.0.1:1883' })).toMatchObject({ url: 'mqtt://127.0.0.1:1883', urls: ['mqtt://127.0.0.1:1883'] });
    const m = MqttSchema.parse({ urls: ['mqtts://10.0.0.1:8883', 'mqtts://10.0.0.2:8883'] });
    expect(m.url).toBe('mqtts://10.0.0.1:8883');
    expect(m.urls).toEqual(['mqtts://10.0.0.1:8883', 'mqtts://10.0.0.2:8883']);
  });

  it('a file with urls loads', () => {
    const file = configFile('  urls:\n    - mqtts://10.0.0.1:8883\n    - mqtts://10.0.0.2:8883');
    const { config } = loadConfig(file, env(file));
    expect(config.mqtt.urls).toHaveLength(2);
  });

  it('wants exactly one of url and urls', () => {
    expect(problems('  url: mqtt://127.0.0.1:1883\n  urls: [mqtt://127.0.0.1:1884]')).toEqual([
      expect.objectContaining({ path: 'mqtt.urls', line: 8, message: expect.stringContaining('not both') }),
    ]);
    expect(problems('  protocol: 4')).toEqual([expect.objectContaining({ path: 'mqtt.url', message: expect.stringContaining('mqtt.url (one broker) or mqtt.urls') })]);
    expect(problems('  urls: []')).toEqual([expect.objectContaining({ path: 'mqtt.urls', line: 7 })]);
  });

  it('checks every URL like url, at its own line: scheme, plaintext beyond loopback, credentials, duplicates', () => {
    const found = problems(
      ['  urls:', '    - mqtt://127.0.0.1:1883', '    - mqtt://broker-2.example:1883', '    - mqtts://user:secret@broker-3.example:8883', '    - http://broker-4.example', '    - mqtt://127.0.0.1:1883'].join('\n'),
    );
    // The scheme is a shape problem: the cross-field checks run once the shape is right.
    expect(found).toEqual([expect.objectContaining({ path: 'mqtt.urls.3', line: 11, message: expect.stringContaining('expected a broker URL') })]);
    const semantic = problems(['  urls:', '    - mqtt://127.0.0.1:1883', '    - mqtt://broker-2.example:1883', '    - mqtts://user:secret@broker-3.example:8883', '    - mqtt://127.0.0.1:1883'].join('\n'));
    expect(semantic.map((p) => `${p.line} ${p.path}`)).toEqual(['9 mqtt.urls.1', '10 mqtt.urls.2', '11 mqtt.urls.3']);
    expect(semantic[0]!.message).toContain('plaintext mqtt:// to the non-loopback host "broker-2.example"');
    expect(semantic[1]!.message).toContain('credentials in the URL');
    expect(semantic[2]!.message).toContain('the same broker as mqtt.urls.0');
    expect(JSON.stringify(semantic)).not.toContain('secret');
  });

  it('allow_insecure covers every URL; TLS files with a plaintext URL name that URL; the embedded broker wants one url', () => {
    expect(problems('  allow_insecure: true\n  urls: [mqtt://10.0.0.1:1883, mqtt://10.0.0.2:1883]')).toEqual([]);
    expect(problems(`  tls: { ca: ${CLIP} }\n  urls: [mqtts://10.0.0.1:8883, mqtt://127.0.0.1:1883]`)).toEqual([
      expect.objectContaining({ path: 'mqtt.urls.1', message: expect.stringContaining('TLS files are set but the URL is plaintext') }),
    ]);
    expect(problems('  embedded_broker: true\n  urls: [mqtt://127.0.0.1:1883, mqtt://127.0.0.1:1884]')).toEqual([
      expect.objectContaining({ path: 'mqtt.embedded_broker', message: expect.stringContaining('give it as mqtt.url') }),
    ]);
  });
});

describe('BrokerRotation', () => {
  it('starts on the first node, moves round robin, counts a failover only when a connection lands on another node', () => {
    const r = new BrokerRotation(['mqtt://127.0.0.1:1', 'mqtt://127.0.0.1:2', 'mqtt://127.0.0.1:3']);
    expect(r.node).toEqual({ url: 'mqtt://127.0.0.1:1', index: 0, nodes: 3 });
    expect(r.connected()).toBe(false); // the first connection is no failover
    r.advance();
    r.advance(); // node 2 did not answer either
    expect(r.url).toBe('mqtt://127.0.0.1:3');
    expect(r.connected()).toBe(true);
    r.advance();
    expect(r.node.index).toBe(0); // wraps
    expect(r.connected()).toBe(true);
    expect(r.failovers).toBe(2);
    const one = new BrokerRotation(['mqtt://127.0.0.1:1']);
    one.connected();
    one.advance();
    expect(one.node.index).toBe(0);
    expect(one.connected()).toBe(false);
    expect(one.failovers).toBe(0);
  });

  it('shows URLs without credentials', () => {
    expect(withoutCredentials('mqtts://user:secret@broker.example:8883')).toBe('mqtts://broker.example:8883');
    expect(withoutCredentials('mqtt://127.0.0.1:1883')).toBe('mqtt://127.0.0.1:1883');
    expect(new BrokerRotation(['wss://u:p@b.example/mqtt']).node.url).toBe('wss://b.example/mqtt');
  });
});
