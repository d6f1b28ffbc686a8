// Where a reporter's text goes: a Node stream (terminal, pipe, file) or any
// object with write(string). Kept apart so every reporter writes, waits for
// a full stream, flushes and decides on color the same way.

export type ReportOutput = NodeJS.WritableStream | { write(s: string): void; isTTY?: boolean };

function isNodeStream(out: ReportOutput): out is NodeJS.WritableStream {
  // A plain { write } object would ignore a callback, so only real streams get one.
  return 'writable' in out && typeof (out as NodeJS.WritableStream).on === 'function';
}

// A reader that went away (a pipe into `head`) has all it wanted: the write
// fails with EPIPE, and later ones find the stream destroyed by it.
const pipeGone = (e: unknown) => (e as NodeJS.ErrnoException | null | undefined)?.code === 'EPIPE';

/** Why nothing more can be written: 'gone' for a reader that went away (not an error), or the error. */
function brokenBy(out: NodeJS.WritableStream): 'gone' | Error | undefined {
  const stream = out as { errored?: Error | null; destroyed?: boolean };
  if (stream.errored) return pipeGone(stream.errored) ? 'gone' : stream.errored;
  if (stream.destroyed) return new Error('the report stream is closed');
  return undefined;
}

/**
 * Writes `text`. When a stream's buffer is full, returns a promise that
 * settles once it has drained (or rejects when the stream failed), so that
 * a caller who waits for it never holds more than a buffer's worth of report
 * in memory. Returns undefined when there is nothing to wait for, so the
 * common case costs no promise.
 */
export function write(out: ReportOutput, text: string): Promise<void> | undefined {
  if (!isNodeStream(out)) {
    out.write(text);
    return undefined;
  }
  const broken = brokenBy(out);
  if (broken === 'gone') return undefined;
  if (broken) return Promise.reject(broken);
  if (out.write(text)) return undefined;
  return new Promise((resolve, reject) => {
    const settle = () => {
      out.off('drain', settle);
      out.off('error', settle);
      out.off('close', settle);
      const error = brokenBy(out);
      if (error && error !== 'gone') reject(error);
      else resolve();
    };
    out.on('drain', settle);
    out.on('error', settle);
    out.on('close', settle);
  });
}

/**
 * Writes `text` and resolves once a stream has taken it (flushed to the fd),
 * so a caller may close a report file as soon as onRunEnd returns.
 */
export function writeAndFlush(out: ReportOutput, text: string): Promise<void> {
  if (!isNodeStream(out)) {
    out.write(text);
    return Promise.resolve();
  }
  const broken = brokenBy(out);
  if (broken === 'gone') return Promise.resolve();
  if (broken) return Promise.reject(broken);
  return new Promise((resolve, reject) => {
    out.write(text, (error?: Error | null) => {
      if (error && !pipeGone(error) && !pipeGone((out as { errored?: unknown }).errored)) reject(error);
      else resolve();
    });
  });
}

/**
 * Color only for a terminal, and never when NO_COLOR is set to a non-empty
 * value (https://no-color.org). Files and pipes have no isTTY, so they stay plain.
 */
export function colorEnabled(out: ReportOutput, env: NodeJS.ProcessEnv = process.env, choice: ColorChoice = 'auto'): boolean {
  if (choice !== 'auto') return choice === 'always';
  const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== '';
  if (noColor) return false;
  // FORCE_COLOR, as Node and most tools read it: set (but not to 0 or false) forces color on.
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== '0' && force.toLowerCase() !== 'false';
  return (out as { isTTY?: boolean }).isTTY === true;
}

/** --color: auto (a terminal, unless NO_COLOR; FORCE_COLOR forces it), always or never. */
export const COLOR_CHOICES = ['auto', 'always', 'never'] as const;
export type ColorChoice = (typeof COLOR_CHOICES)[number];
