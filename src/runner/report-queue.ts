// Hands results to the reporters in report order: each as soon as every test
// before it has a result, and the next only once every reporter has taken
// the last one (a reporter whose output is full returns a promise). A result
// is dropped once handed over, so the runner's memory holds only results
// that wait for an earlier test or for a slow output; `congested` tells the
// scheduler when that is too much.
import type { Reporter, TestResult } from './types.js';

/**
 * How much result text may wait here before new work is held back. Plain
 * passes weigh a few hundred bytes, so this only ever stops runs whose tests
 * print a lot while an early test is slow, or whose output cannot keep up.
 */
const MAX_WAITING_BYTES = 32 << 20;
/** What a result weighs beyond its text: names, numbers, the object itself. */
const RESULT_OVERHEAD_BYTES = 256;

function weight(result: TestResult): number {
  return result.output.length + (result.message?.length ?? 0) + RESULT_OVERHEAD_BYTES;
}

export interface ReportQueueEvents {
  /** Before each event reaches the reporters (the progress line clears itself). */
  beforeEvent?(): void;
  /** The queue handed over what it could, or is no longer congested: new work may be welcome. */
  onRelief?(): void;
  /** A reporter failed (its output cannot be written): the run should stop. */
  onError?(error: unknown): void;
}

export class ReportQueue {
  private readonly waiting = new Map<number, TestResult>();
  /** Index of the next result to hand over: the earliest test without a delivered result. */
  private next = 0;
  private waitingBytes = 0;
  /** Set while a reporter is writing: settles once it is done and the pump went on. */
  private blocked: Promise<void> | undefined;
  /** After finish(): tests without a result are skipped instead of waited for. */
  private skipMissing = false;
  private failure: { error: unknown } | undefined;
  /** Counts over the results handed over. */
  readonly counts = { passed: 0, failed: 0, ignored: 0, skipped: 0, delivered: 0 };

  constructor(
    private readonly total: number,
    private readonly reporters: readonly Reporter[],
    private readonly events: ReportQueueEvents = {},
  ) {}

  /** The result of test number `index` in report order. */
  add(index: number, result: TestResult): void {
    this.waiting.set(index, result);
    this.waitingBytes += weight(result);
    this.pump();
  }

  /** True while more results wait than memory should hold. */
  get congested(): boolean {
    return this.waitingBytes > MAX_WAITING_BYTES;
  }

  /** The earliest test whose result has not been handed over. */
  get nextIndex(): number {
    return this.next;
  }

  /**
   * Hands over what is left, in order, skipping tests that will never have
   * a result (--bail, an interrupted run); resolves once every reporter has
   * taken it all. Rejects with a reporter's error.
   */
  async finish(): Promise<void> {
    this.skipMissing = true;
    this.pump();
    while (this.blocked) await this.blocked;
    if (this.failure) throw this.failure.error;
  }

  private pump(): void {
    if (this.blocked || this.failure) return;
    while (this.next < this.total) {
      const result = this.waiting.get(this.next);
      if (!result) {
        if (!this.skipMissing) break;
        this.next++;
        continue;
      }
      this.waiting.delete(this.next++);
      let pending: Promise<unknown> | undefined;
      try {
        pending = this.deliver(result);
      } catch (err) {
        return this.fail(err);
      }
      if (pending) {
        this.blocked = pending.then(
          () => {
            this.blocked = undefined;
            this.delivered(result);
            this.pump();
          },
          (err: unknown) => {
            this.blocked = undefined;
            this.fail(err);
          },
        );
        return;
      }
      this.delivered(result);
    }
    this.events.onRelief?.();
  }

  /** Gives the result to every reporter; a promise if any of them must be waited for. */
  private deliver(result: TestResult): Promise<unknown> | undefined {
    this.events.beforeEvent?.();
    let pending: Array<void | Promise<void>> | undefined;
    for (const reporter of this.reporters) {
      const written = reporter.onTestResult?.(result);
      if (written) (pending ??= []).push(written);
    }
    return pending && (pending.length === 1 ? pending[0]! : Promise.all(pending));
  }

  private delivered(result: TestResult): void {
    const wasCongested = this.congested;
    this.waitingBytes -= weight(result);
    this.counts.delivered++;
    this.counts[result.status]++;
    if (wasCongested && !this.congested) this.events.onRelief?.();
  }

  private fail(error: unknown): void {
    this.failure ??= { error };
    this.waiting.clear();
    this.events.onError?.(error);
  }
}
