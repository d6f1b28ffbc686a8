// How an error thrown by the user's own code (a device callback, a check)
// is shown: its stack as it concerns the user, without the frames of
// kvmtest itself and of Node's internals, which say nothing about the bug.
import { inspect } from 'node:util';

const OWN_CODE = new URL('../', import.meta.url).href;
const OWN_PATH = decodeURIComponent(new URL('../', import.meta.url).pathname);

function ownFrame(line: string): boolean {
  const frame = line.trim();
  return frame.startsWith('at ') && (frame.includes(OWN_CODE) || frame.includes(OWN_PATH) || frame.includes('node:internal/') || frame.endsWith('(<anonymous>)'));
}

/** "TypeError: x is undefined\n    at read (file:///.../kbd.kvmtest.ts:12:5)" */
export function describeUserError(err: unknown): string {
  if (!(err instanceof Error)) return `a non-Error value was thrown: ${inspect(err)}`;
  const stack = err.stack ?? `${err.name}: ${err.message}`;
  return stack.split('\n').filter((line) => !ownFrame(line)).join('\n');
}
