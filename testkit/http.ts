// One HTTP GET of a JSON document on loopback, for the test kit and the benchmarks. node:http rather than fetch():
// fetch's parser is WebAssembly (undici), which the agent's V8 flags leave out (core/runtime-env.ts), and the
// benchmarks run under them.
import { get } from 'node:http';

export interface JsonReply {
  status: number;
  /** The parsed body; null when it is not JSON. */
  body: unknown;
}

/** GET `url`; rejects on a connection error or when no full answer came within `timeout_ms`. */
export function getJson(url: string, timeout_ms = 2000): Promise<JsonReply> {
  return new Promise((resolve, reject) => {
    const req = get(url, { timeout: timeout_ms }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let body: unknown = null;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON: body stays null
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer in ${timeout_ms} ms`)));
    req.on('error', reject);
  });
}
