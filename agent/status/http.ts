// HTTP pieces of the status server shared by its routes: an error with a status, bounded JSON request bodies,
// and the cross-site guards of the routes that change something.
import type { IncomingMessage } from 'node:http';

/** A refusal answered as `{status: "error", error}` with this HTTP status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Largest JSON body accepted (a line, a zone, or a cameras patch is far smaller). */
export const MAX_JSON_BODY_BYTES = 64 * 1024;

/**
 * A request from another site, as the browser says it (Sec-Fetch-Site). A form or script elsewhere cannot
 * send `Content-Type: application/json` without a preflight this server never answers, and its Origin is
 * refused too: this is the third lock.
 */
export function crossSite(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  return site === 'cross-site' || site === 'same-site';
}

/**
 * The request's body as JSON: `Content-Type: application/json` required (415), at most `maxBytes` (413, from
 * Content-Length before anything is read, else while reading), valid UTF-8 JSON (400).
 */
export async function readJsonBody(req: IncomingMessage, maxBytes = MAX_JSON_BODY_BYTES): Promise<unknown> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) throw new HttpError(415, `expected Content-Type: application/json (got ${type ? JSON.stringify(type) : 'none'})`);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) throw new HttpError(413, `the body is ${declared} bytes: at most ${maxBytes}`);
  // Past the limit the rest is read and dropped (bounded in time by the server's request timeout): the answer
  // then goes out on a drained connection, where closing it with unread bytes would reset it under the answer.
  const bytes = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= maxBytes) chunks.push(chunk);
      else chunks.length = 0;
    };
    const finish = (err?: Error): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', finish);
      req.off('close', onClose);
      if (err) reject(err);
      else if (size > maxBytes) reject(new HttpError(413, `the body is over ${maxBytes} bytes`));
      else resolve(Buffer.concat(chunks, size));
    };
    const onEnd = (): void => finish();
    const onClose = (): void => finish(new HttpError(400, 'the request was cut short'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', finish);
    req.on('close', onClose);
  });
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError(400, 'the body is not UTF-8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HttpError(400, `the body is not JSON: ${(err as Error).message}`);
  }
}
