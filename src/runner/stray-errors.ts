// Errors that reach the worker's process rather than a test: a callback's
// Promise rejected with nobody listening, an exception thrown from a timer
// a callback set. Node would end the process for them (and with it every
// test of the batch). The worker hands them to the test running when they
// arrive; one that arrives between tests goes to the next test to finish,
// which says so, since the code that raised it is the file's.
import { describeUserError } from '../hardware/user-errors.js';

export interface StrayWatch {
  /** The message for errors that arrived since watch(), or undefined. */
  errors(): string | undefined;
  /** Stops watching (errors after this go to the next watch). */
  end(): void;
}

export class StrayErrors {
  private current: string[] | undefined;
  private pending: string[] = [];

  /** Installs the process-wide handlers (once per process). */
  install(): void {
    process.on('unhandledRejection', (reason) => this.take('an unhandled Promise rejection', reason));
    process.on('uncaughtException', (err) => this.take('an uncaught exception', err));
  }

  watch(): StrayWatch {
    const errors = this.pending.splice(0).map((e) => `${e} (it arrived between tests, after the previous test of this file had ended)`);
    this.current = errors;
    return {
      errors: () => {
        if (errors.length === 0) return undefined;
        return `${errors.length === 1 ? 'an error' : `${errors.length} errors`} reached no handler while this test ran: ${errors.join('\n')}`;
      },
      end: () => {
        if (this.current === errors) this.current = undefined;
      },
    };
  }

  private take(what: string, reason: unknown): void {
    const message = `${what}: ${describeUserError(reason)}`;
    if (this.current) this.current.push(message);
    else this.pending.push(message);
  }
}
