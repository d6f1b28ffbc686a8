// A one-line progress display on a terminal ("[1234/5000] 3 failed, 12.3 s")
// for runs longer than about a second. Off when stderr is not a terminal or
// when CI says this is a CI run. Reporters' output is written between clear() and draw(),
// so the line never mixes with it.
const SHOW_AFTER_MS = 1000;
const REDRAW_EVERY_MS = 100;

/** True when CI says this is a CI run: set to anything but empty, 0 or false (CI=false is a local run). */
export function inCi(env: NodeJS.ProcessEnv): boolean {
  const ci = (env.CI ?? '').trim().toLowerCase();
  return ci !== '' && ci !== '0' && ci !== 'false';
}

export interface ProgressCounts {
  done: number;
  total: number;
  failed: number;
}

export class ProgressLine {
  private readonly started: number;
  private shown = false;
  private lastDraw = 0;

  constructor(
    private readonly stream: Pick<NodeJS.WriteStream, 'write' | 'isTTY'> = process.stderr,
    private readonly enabled = stream.isTTY === true && !inCi(process.env),
    /** The clock, in milliseconds (tests pass their own). */
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
  }

  /** Redraws the line if it is time to (cheap to call after every result). */
  update(counts: ProgressCounts): void {
    if (!this.enabled) return;
    const now = this.now();
    if (now - this.started < SHOW_AFTER_MS || now - this.lastDraw < REDRAW_EVERY_MS) return;
    this.lastDraw = now;
    const seconds = ((now - this.started) / 1000).toFixed(1);
    const failed = counts.failed > 0 ? `, ${counts.failed} failed` : '';
    this.stream.write(`\r\x1b[K[${counts.done}/${counts.total}] tests done${failed}, ${seconds} s`);
    this.shown = true;
  }

  /** Removes the line (before other output, and at the end). */
  clear(): void {
    if (!this.shown) return;
    this.stream.write('\r\x1b[K');
    this.shown = false;
    this.lastDraw = 0;
  }
}
