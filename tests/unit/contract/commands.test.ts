// The command catalogue and the reply namespace: what a box accepts, and where it may answer.
import { describe, expect, it } from 'vitest';
import { COMMAND_NAMES, COMMANDS, commandRequestSchema, commandResponseSchema } from '../../../contract/commands.js';
import { baseTopic, centerReplyTopic, isPermittedResponseTopic, topicsFor } from '../../../contract/topics.js';

const BASE = baseTopic('roadside', 'a7-north', 'box-0042');
const T = topicsFor(BASE);

describe('command catalogue', () => {
  it('lists every command once, each with a summary and strict arguments', () => {
    expect(COMMAND_NAMES).toEqual(['ping', 'rebirth', 'resend', 'set-log-level', 'snapshot', 'signal', 'rebase-reference', 'reload-config', 'config-get', 'config-apply', 'evidence']);
    for (const name of COMMAND_NAMES) {
      const spec = COMMANDS[name];
      expect(spec.summary.length, name).toBeGreaterThan(10);
      expect(spec.args.safeParse({ surprise: 1 }).success, `${name} refuses unknown keys`).toBe(false);
      expect(commandRequestSchema(name).safeParse({ id: 'x', surprise: 1 }).success).toBe(false);
      expect(commandResponseSchema(name).safeParse({ status: 'error', error: { code: 'BUSY', message: 'm' } }).success).toBe(true);
    }
  });

  it('types responses: an ok response must carry the command result', () => {
    expect(commandResponseSchema('resend').safeParse({ status: 'ok', data: { queued: 1, missing: 0 } }).success).toBe(true);
    expect(commandResponseSchema('resend').safeParse({ status: 'ok', data: { queued: 1 } }).success).toBe(false);
    expect(commandResponseSchema('ping').safeParse({ status: 'ok', data: null }).success).toBe(false);
  });
});

describe('reply namespace (MQTT 5 Response Topic)', () => {
  const center = centerReplyTopic('roadside', 'center-1');

  it('permits a center reply topic and the device’s own reply tree, with levels below', () => {
    expect(center).toBe('roadside/_center/center-1/reply');
    for (const t of [center, `${center}/a`, `${center}/a/b`, T.reply, `${T.reply}/x`, 'roadside/_center/other-center/reply']) {
      expect(isPermittedResponseTopic(BASE, t), t).toBe(true);
    }
  });

  it('refuses the box’s own topics, other devices, other trees, wildcards and empty levels', () => {
    const other = topicsFor(baseTopic('roadside', 'a7-north', 'box-0043'));
    const refused = [
      T.status,
      T.birth,
      T.health,
      T.events('cam1'),
      T.cameraStatus('cam1'),
      T.command('reload-config'),
      T.commandResult('ping'),
      `${BASE}/replyx`,
      other.status,
      other.reply,
      other.command('reload-config'),
      'center/replies/dev1',
      'roadside/_center/c1',
      'roadside/_center/c1/replies',
      'roadside/_center//reply',
      'elsewhere/_center/c1/reply',
      'roadside/_center/+/reply',
      `${T.reply}/#`,
      `${T.reply}/`,
      '',
      `${center}/${'x'.repeat(1100)}`,
    ];
    for (const t of refused) expect(isPermittedResponseTopic(BASE, t), t).toBe(false);
  });

  it('centerReplyTopic makes any client id one topic level', () => {
    expect(centerReplyTopic('roadside', 'a/b+c#d e')).toBe('roadside/_center/a_b_c_d_e/reply');
  });
});

describe('command topics', () => {
  it('commandName accepts exactly one level below {base}/cmd/', () => {
    expect(T.commandName(T.command('ping'))).toBe('ping');
    for (const t of [`${BASE}/cmd/ping/result`, `${BASE}/cmd/`, `${BASE}/cmd`, `${BASE}/cmdping`, 'roadside/a7-north/other/cmd/ping']) expect(T.commandName(t), t).toBeUndefined();
  });
});
