// A report file (--output) that is never seen half written: the report goes
// to a temporary file in the target's directory and is renamed over the
// target once complete (a rename within a directory is atomic), so a run
// that is killed or fails leaves the previous report in place. Devices and
// pipes (/dev/stdout, a FIFO) cannot be renamed over and are written in place.
import { randomBytes } from 'node:crypto';
import { createWriteStream, renameSync, statSync, unlinkSync, realpathSync, type Stats, type WriteStream } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { getSystemErrorMap } from 'node:util';

/** The report cannot be written: the message names the file and the reason, on one line. */
export class ReportFileError extends Error {}

/** "ENOSPC: no space left on device", without the temporary file's name that Node adds. */
function reason(err: unknown): string {
  const { errno, code, message } = err as NodeJS.ErrnoException;
  const known = errno === undefined ? undefined : getSystemErrorMap().get(errno);
  return known ? `${code ?? known[0]}: ${known[1]}` : String(message ?? err);
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

export class ReportFile {
  private failure: ReportFileError | undefined;
  private settled = false;
  private readonly cleanUp = () => this.discard();

  private constructor(
    /** The path as the user gave it (for messages). */
    readonly path: string,
    /** Where the report goes when complete; undefined when written in place. */
    private readonly target: string | undefined,
    /** What the stream writes to: the temporary file, or the path itself. */
    private readonly written: string,
    readonly stream: WriteStream,
  ) {
    stream.on('error', (err) => this.fail(err));
    // Also when the process exits without committing (a second Ctrl-C).
    process.once('exit', this.cleanUp);
  }

  /** Opens the report's temporary file; rejects with a ReportFileError. */
  static open(path: string): Promise<ReportFile> {
    const existing = statOrUndefined(path);
    if (existing?.isDirectory()) return Promise.reject(new ReportFileError(`cannot write the report to ${path}: it is a directory`));
    const inPlace = existing !== undefined && !existing.isFile();
    // Through a symbolic link, the report replaces the file it points to, not the link.
    const target = inPlace ? undefined : existing ? realpathSync(path) : path;
    const written = target === undefined ? path : join(dirname(target), `.${basename(target)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
    return new Promise((resolve, reject) => {
      // 'wx': a temporary file never replaces anything, whatever is lying
      // around. Flushed to disk before the rename; a device cannot be (EINVAL).
      const stream = createWriteStream(written, inPlace ? { flags: 'w' } : { flags: 'wx', flush: true });
      const failed = (err: Error) => reject(new ReportFileError(`cannot write the report to ${path}: ${reason(err)}`));
      stream.once('error', failed);
      stream.once('open', () => {
        stream.off('error', failed);
        resolve(new ReportFile(path, target, written, stream));
      });
    });
  }

  /** The first write error, if writing failed. */
  get error(): ReportFileError | undefined {
    // A failed write's callback runs before the stream's 'error' event.
    if (this.stream.errored) this.fail(this.stream.errored);
    return this.failure;
  }

  /** Flushes and closes the file, then puts it in place; throws a ReportFileError. */
  async commit(): Promise<void> {
    if (!this.stream.closed) {
      await new Promise<void>((resolve) => {
        this.stream.once('close', resolve);
        this.stream.end();
      });
    }
    const failed = this.error;
    if (failed) {
      this.discard();
      throw failed;
    }
    try {
      if (this.target !== undefined) renameSync(this.written, this.target);
    } catch (err) {
      this.fail(err);
      this.discard();
      throw this.failure;
    }
    this.settle();
  }

  /** Gives up: closes the file and removes the temporary one (the target is left as it was). */
  discard(): void {
    if (this.settled) return;
    this.settle();
    this.stream.destroy();
    if (this.target === undefined) return;
    try {
      unlinkSync(this.written);
    } catch {
      // Already gone.
    }
  }

  private settle(): void {
    this.settled = true;
    process.off('exit', this.cleanUp);
  }

  private fail(err: unknown): void {
    // A pipe whose reader went away (--output /dev/stdout | head) has what it wanted.
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') return;
    this.failure ??= new ReportFileError(`cannot write the report to ${this.path}: ${reason(err)}`);
  }
}
