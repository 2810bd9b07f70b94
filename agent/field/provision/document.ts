// The two text files provision writes: the config (YAML, no secrets, a header saying where they are) and
// secrets.env (the variables the loader reads, quoted for systemd's EnvironmentFile= and a shell alike).
import { basename } from 'node:path';
import { Document, isMap } from 'yaml';
import type { Answers } from './gather.js';
import { cameraEnvKey, envLine } from './inputs.js';

/** Secrets by variable name: never in the YAML; the loader reads these variables. */
export function secretsOf(a: Answers): Record<string, string> {
  const secrets: Record<string, string> = {};
  if (a.mqtt.password) secrets.ROADSIDE_MQTT_PASSWORD = a.mqtt.password;
  for (const cam of a.cameras) if (cam.password) secrets[`ROADSIDE_CAMERA_${cameraEnvKey(cam.id)}_PASSWORD`] = cam.password;
  return secrets;
}

export function secretsText(secrets: Record<string, string>): string {
  return [
    '# roadside-agent secrets, written by `roadside-agent provision`. Mode 0600: root only (systemd reads it).',
    ...Object.entries(secrets).map(([k, v]) => envLine(k, v)),
    '',
  ].join('\n');
}

/** agent.yaml: header comment + the document, with `frame: { width, height }` in flow style as in the examples. */
export function configText(a: Answers, tlsYaml: Record<string, string> | undefined, secretsFile: string, secretNames: string[]): string {
  const config = {
    device: { id: a.deviceId, site: a.site, data_dir: a.dataDir },
    cameras: a.cameras.map((c) => ({ id: c.id, url: c.url, ...(c.username ? { username: c.username } : {}), frame: c.frame })),
    mqtt: {
      url: a.mqtt.url,
      ...(a.mqtt.username ? { username: a.mqtt.username } : {}),
      ...(tlsYaml ? { tls: tlsYaml } : {}),
      ...(a.mqtt.allowInsecure ? { allow_insecure: true } : {}),
    },
  };
  const header = [
    '# yaml-language-server: $schema=/opt/roadside-agent/current/config/config.schema.json',
    `# roadside-agent configuration for ${a.site}/${a.deviceId}, written by \`roadside-agent provision\`.`,
    `# Secrets are not in this file: ${basename(secretsFile)} beside it holds ${secretNames.join(', ') || '(none yet)'}.`,
    '# Add counting lines, zones and calibration per camera (see config/examples/field.yaml), then check:',
    `#   roadside-agent config check ${a.out}`,
    '',
  ].join('\n');
  const doc = new Document(config);
  config.cameras.forEach((_, i) => {
    const frame = doc.getIn(['cameras', i, 'frame'], true);
    if (isMap(frame)) frame.flow = true;
  });
  return header + doc.toString();
}
