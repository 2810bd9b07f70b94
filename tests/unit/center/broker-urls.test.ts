// The center's --url list: nodes for mqtt.js' servers rotation, refusals, and which URLs are plaintext beyond loopback.
import { describe, expect, it } from 'vitest';
import { brokerNodes, collectUrls, plaintextRemote } from '../../../center/broker-urls.js';

describe('center broker URLs', () => {
  it('collects repeated and comma-separated --url values in order', () => {
    expect(collectUrls('mqtt://a:1, mqtt://b:2', collectUrls('mqtts://c', undefined))).toEqual(['mqtts://c', 'mqtt://a:1', 'mqtt://b:2']);
  });

  it('one URL goes to mqtt.js as it is; several become servers with their scheme and default ports', () => {
    expect(brokerNodes('mqtts://h:8883')).toEqual({ url: 'mqtts://h:8883', label: 'mqtts://h:8883' });
    expect(brokerNodes(['mqtts://a', 'mqtt://[::1]:1884', 'wss://c']).servers).toEqual([
      { host: 'a', port: 8883, protocol: 'mqtts' },
      { host: '::1', port: 1884, protocol: 'mqtt' },
      { host: 'c', port: 443, protocol: 'wss' },
    ]);
  });

  it('refuses no URL, a non-broker scheme and nodes of different paths, with CENTER_BAD_OPTION', () => {
    for (const urls of [[], ['http://a'], ['not a url'], ['ws://a/mqtt', 'ws://b/other']]) {
      expect(() => brokerNodes(urls), JSON.stringify(urls)).toThrow(expect.objectContaining({ code: 'CENTER_BAD_OPTION' }));
    }
  });

  it('names the plaintext URLs that leave the machine, not TLS ones or loopback ones', () => {
    expect(plaintextRemote(['mqtt://broker.example:1883', 'mqtts://broker.example', 'mqtt://127.0.0.1:1883', 'ws://localhost/m', 'ws://[::1]:80', 'ws://10.0.0.1/m', 'bad'])).toEqual([
      'mqtt://broker.example:1883',
      'ws://10.0.0.1/m',
    ]);
  });
});
