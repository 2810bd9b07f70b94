// Questions at a terminal for `provision`; tests pass a scripted Prompter instead.
import { createInterface } from 'node:readline/promises';
import { Writable } from 'node:stream';

/** What provision asks a person at the terminal. Tests pass a scripted one; the CLI uses readlinePrompter. */
export interface Prompter {
  /** Asks for a line; an empty answer gives `def` (shown in brackets) or ''. */
  ask(question: string, def?: string): Promise<string>;
  /** Asks for a secret: nothing typed is echoed. */
  askSecret(question: string): Promise<string>;
  /** Shows a line (e.g. why an answer was refused). */
  note(text: string): void;
  close(): void;
}

/**
 * Prompts on a terminal with node:readline/promises. Secrets: the prompt is written, then everything readline
 * would echo is dropped until the answer is in (in raw mode the terminal itself echoes nothing).
 * Ctrl-C rejects the pending (or next) question with an AbortError.
 */
export function readlinePrompter(input: NodeJS.ReadableStream & { isTTY?: boolean }, output: NodeJS.WritableStream & { columns?: number }): Prompter {
  let muted = false;
  const sink = Object.assign(
    new Writable({
      write(chunk: Buffer | string, _enc, cb) {
        if (!muted) output.write(chunk);
        cb();
      },
    }),
    { columns: output.columns },
  );
  const rl = createInterface({ input, output: sink, terminal: input.isTTY === true });
  const aborts = new Set<AbortController>();
  // In raw mode Ctrl-C reaches readline, not the process: abort the pending question, or the next one
  // (Ctrl-C while ffprobe runs).
  let interrupted = false;
  rl.on('SIGINT', () => {
    interrupted = true;
    for (const a of aborts) a.abort();
  });
  const question = async (text: string): Promise<string> => {
    if (interrupted) throw Object.assign(new Error('aborted'), { name: 'AbortError' });
    const ac = new AbortController();
    aborts.add(ac);
    try {
      return await rl.question(text, { signal: ac.signal });
    } finally {
      aborts.delete(ac);
    }
  };
  return {
    async ask(q, def) {
      const answer = (await question(`${q}${def ? ` [${def}]` : ''}: `)).trim();
      return answer === '' ? (def ?? '') : answer;
    },
    async askSecret(q) {
      output.write(`${q}: `);
      muted = true;
      try {
        return await question('');
      } finally {
        muted = false;
        output.write('\n');
      }
    },
    note: (text) => output.write(`${text}\n`),
    close: () => rl.close(),
  };
}
