// Payloads as they arrive: JSON, or a "not JSON" error text for the invalid report.
import { errorMessage } from '../core/errors.js';

export type ParsedJson = { ok: true; value: unknown } | { ok: false; error: string };

export function parseJson(payload: Buffer): ParsedJson {
  try {
    return { ok: true, value: JSON.parse(payload.toString('utf8')) as unknown };
  } catch (err) {
    return { ok: false, error: `not JSON: ${errorMessage(err)}` };
  }
}
