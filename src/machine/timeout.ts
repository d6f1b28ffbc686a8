// Stops a guest that runs too long. KVM_RUN blocks the calling thread; a
// signal aimed at that thread makes it return EINTR, even while KVM is
// emulating. A POSIX timer delivers the signal to this thread
// (SIGEV_THREAD_ID) every few milliseconds while runs are under way; on each
// interruption the run loop checks the current run's deadline. Ticking
// rather than arming a one-shot timer per run saves two system calls per
// test, and a tick that lands just before KVM_RUN starts is simply followed
// by the next one.
import { isMainThread } from 'node:worker_threads';
import * as libc from '../kvm/libc.js';

const SIGEV_THREAD_ID = 4;
const SIGEVENT_SIZE = 64;
/** Tick period: the precision of timeouts. */
const TICK_NS = 10_000_000; // 10 ms

let handlerInstalled = false;
const NEVER = Infinity;

/** Without a handler, SIGUSR2's default action would kill the process. */
function installHandler(): void {
  if (handlerInstalled) return;
  if (!isMainThread) {
    throw new Error(
      "kvmtest runs guests on a process's main thread only (its timeouts are a signal aimed at that thread), not in a worker thread. " +
        "Under Vitest, set pool: 'forks' in vitest.config (test files then run in child processes, on their main threads); " +
        'elsewhere, run guests from the main thread or from a child process, not from a worker_threads Worker',
    );
  }
  process.on('SIGUSR2', () => {});
  handlerInstalled = true;
}

export class RunTimer {
  private readonly timer: bigint;
  private readonly spec = new Uint8Array(32);
  private readonly specView = new DataView(this.spec.buffer);
  private deadline = NEVER;
  private ticking = false;
  private deleted = false;

  constructor() {
    installHandler();
    const sigevent = new Uint8Array(SIGEVENT_SIZE);
    const view = new DataView(sigevent.buffer);
    view.setInt32(8, libc.SIGUSR2, true); // sigev_signo
    view.setInt32(12, SIGEV_THREAD_ID, true); // sigev_notify
    view.setInt32(16, libc.gettid(), true); // _sigev_un._tid
    this.timer = libc.timerCreate(sigevent);
    // A tick after Node has dropped its signal handlers at exit would kill the process.
    process.once('exit', () => this.delete());
  }

  /** Starts a run's clock: it times out `ms` milliseconds from now. */
  arm(ms: number): void {
    this.deadline = performance.now() + ms;
    if (!this.ticking) {
      this.setTimer(TICK_NS, Math.min(TICK_NS, Math.max(1, Math.round(ms * 1e6))));
      this.ticking = true;
    }
  }

  /** Ends the run's clock (the ticks go on until stop()). */
  disarm(): void {
    this.deadline = NEVER;
  }

  /** Stops the ticks: call when no run is coming soon, so the process gets no more signals. */
  stop(): void {
    if (!this.ticking) return;
    this.setTimer(0, 0);
    this.ticking = false;
  }

  /** Milliseconds until the deadline (negative once past, Infinity when disarmed). */
  remainingMs(): number {
    return this.deadline - performance.now();
  }

  /** True once the deadline has passed. */
  expired(): boolean {
    return performance.now() >= this.deadline;
  }

  delete(): void {
    if (this.deleted) return;
    this.deleted = true;
    libc.timerDelete(this.timer);
  }

  private setTimer(intervalNs: number, valueNs: number): void {
    const v = this.specView;
    v.setBigInt64(0, BigInt(Math.floor(intervalNs / 1e9)), true);
    v.setBigInt64(8, BigInt(intervalNs % 1e9), true);
    v.setBigInt64(16, BigInt(Math.floor(valueNs / 1e9)), true);
    v.setBigInt64(24, BigInt(valueNs % 1e9), true);
    libc.timerSettime(this.timer, this.spec);
  }
}
