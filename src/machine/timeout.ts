// Stops a guest that runs too long. KVM_RUN blocks the calling thread; a
// signal aimed at that thread makes it return EINTR, even while KVM is
// emulating. A POSIX timer delivers the signal to this thread (SIGEV_THREAD_ID)
// at the deadline and then every few milliseconds, so a signal that lands
// just before KVM_RUN starts is followed by another one inside it.
import { isMainThread } from 'node:worker_threads';
import * as libc from '../kvm/libc.js';

const SIGUSR2 = 12;
const SIGEV_THREAD_ID = 4;
const SIGEVENT_SIZE = 64;
const REFIRE_NS = 5_000_000; // 5 ms

let handlerInstalled = false;

/** Without a handler, SIGUSR2's default action would kill the process. */
function installHandler(): void {
  if (handlerInstalled) return;
  if (!isMainThread) {
    throw new Error('kvmtest runs guests on a process main thread only (timeouts use a signal); not in a Worker');
  }
  process.on('SIGUSR2', () => {});
  handlerInstalled = true;
}

export class RunTimer {
  private readonly timer: bigint;
  private readonly spec = new Uint8Array(32);
  private readonly specView = new DataView(this.spec.buffer);
  private deadline = 0n;
  private deleted = false;

  constructor() {
    installHandler();
    const sigevent = new Uint8Array(SIGEVENT_SIZE);
    const view = new DataView(sigevent.buffer);
    view.setInt32(8, SIGUSR2, true); // sigev_signo
    view.setInt32(12, SIGEV_THREAD_ID, true); // sigev_notify
    view.setInt32(16, libc.gettid(), true); // _sigev_un._tid
    this.timer = libc.timerCreate(sigevent);
  }

  /** Starts the clock: the first signal comes after `ms` milliseconds. */
  arm(ms: number): void {
    this.deadline = process.hrtime.bigint() + BigInt(Math.round(ms * 1e6));
    const ns = Math.max(1, Math.round(ms * 1e6));
    this.setTimer(REFIRE_NS, ns);
  }

  disarm(): void {
    this.setTimer(0, 0);
  }

  /** True once the deadline has passed. */
  expired(): boolean {
    return process.hrtime.bigint() >= this.deadline;
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
