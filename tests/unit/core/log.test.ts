import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, redact, redactUrl } from '../../../core/log.js';

function collect() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  return { lines, stream };
}

describe('redaction', () => {
  it('hides credentials inside URLs', () => {
    expect(redactUrl('rtsp://admin:hunter2@127.0.0.1:554/s')).toBe('rtsp://[redacted]@127.0.0.1:554/s');
    expect(redactUrl('mqtts://box:pw@broker:8883 and rtsp://u@cam/x')).toBe('mqtts://[redacted]@broker:8883 and rtsp://[redacted]@cam/x');
    expect(redactUrl('rtsp://127.0.0.1/stream')).toBe('rtsp://127.0.0.1/stream');
  });

  it('hides the whole user info, also with "@", "/" or ":" in the password, in JSON and in cut text', () => {
    expect(redactUrl('mqtt://agent:P@ss@host:1883/x')).toBe('mqtt://[redacted]@host:1883/x');
    expect(redactUrl('rtsp://admin:pa/ss@127.0.0.1/s')).toBe('rtsp://[redacted]@127.0.0.1/s');
    expect(redactUrl('{"a":"mqtt://u:p:w@h","b":"rtsp://v:q@c/s"}')).toBe('{"a":"mqtt://[redacted]@h","b":"rtsp://[redacted]@c/s"}');
    expect(redactUrl('got "mqtt://agent:PASSWORD@host" (env ROADSIDE_MQTT_URL)')).toBe('got "mqtt://[redacted]@host" (env ROADSIDE_MQTT_URL)');
    // No user info: unchanged, including ports and e-mail addresses after a blank.
    expect(redactUrl('mqtts://broker:8883/x sent by ops@example.org')).toBe('mqtts://broker:8883/x sent by ops@example.org');
  });

  it('costs linear time on a long text without blanks', () => {
    const text = 'a://'.repeat(250_000);
    const started = Date.now();
    expect(redactUrl(text)).toBe(text);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('blanks secret-looking keys at any depth and keeps the rest', () => {
    const out = redact({ mqtt: { url: 'mqtt://a:b@h', password: 'pw', tls: { key: '/etc/k.pem' } }, token: 'tok', count: 3, ok: true }) as Record<string, unknown>;
    expect(out).toEqual({ mqtt: { url: 'mqtt://[redacted]@h', password: '[redacted]', tls: { key: '[redacted]' } }, token: '[redacted]', count: 3, ok: true });
  });

  it('no secret reaches a log line: objects, messages, errors, child bindings', () => {
    const { lines, stream } = collect();
    const log = createLogger({ destination: stream, level: 'debug' });
    const child = log.child({ mod: 'camera', camera: 'north' });
    child.info({ url: 'rtsp://admin:hunter2@127.0.0.1/s', credentials: { username: 'u', password: 'hunter2' } }, 'connecting');
    child.warn('retrying rtsp://admin:hunter2@127.0.0.1/s');
    child.error({ err: new Error('connect failed for mqtt://dev:mqttpw@127.0.0.1:1883') }, 'failed');
    log.info({ config: { mqtt: { password: 'mqttpw' }, status: { token: 'tok-123456789012345' } } }, 'config');
    const text = lines.join('\n');
    for (const secret of ['hunter2', 'mqttpw', 'tok-123456789012345']) expect(text).not.toContain(secret);
    expect(lines).toHaveLength(4);
    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(first).toMatchObject({ mod: 'camera', camera: 'north', msg: 'connecting', url: 'rtsp://[redacted]@127.0.0.1/s' });
    expect(JSON.parse(lines[1]!)).toMatchObject({ msg: 'retrying rtsp://[redacted]@127.0.0.1/s' });
    expect(JSON.parse(lines[2]!)).toMatchObject({ err: { message: 'connect failed for mqtt://[redacted]@127.0.0.1:1883' } });
  });
});
