// Where a reporter's text goes: a Node stream (terminal, pipe, file) or any
// object with write(string). Kept apart so every reporter writes, flushes and
// decides on color the same way.

export type ReportOutput = NodeJS.WritableStream | { write(s: string): void; isTTY?: boolean };

function isNodeStream(out: ReportOutput): out is NodeJS.WritableStream {
  // A plain { write } object would ignore a callback, so only real streams get one.
  return 'writable' in out && typeof (out as NodeJS.WritableStream).on === 'function';
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
  return new Promise((resolve, reject) => {
    out.write(text, (error?: Error | null) => {
      // A reader that went away (a pipe into `head`) has all it wanted: the
      // write fails with EPIPE, and later ones find the stream destroyed by it.
      const pipeGone = (e: unknown) => (e as NodeJS.ErrnoException | null | undefined)?.code === 'EPIPE';
      const stored = (out as { errored?: unknown }).errored;
      if (error && !pipeGone(error) && !pipeGone(stored)) reject(error);
      else resolve();
    });
  });
}

/**
 * Color only for a terminal, and never when NO_COLOR is set to a non-empty
 * value (https://no-color.org). Files and pipes have no isTTY, so they stay plain.
 */
export function colorEnabled(out: ReportOutput, env: NodeJS.ProcessEnv = process.env): boolean {
  const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== '';
  return !noColor && (out as { isTTY?: boolean }).isTTY === true;
}
