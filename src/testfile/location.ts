// Where in a test file something was written: the first stack frame
// outside kvmtest's own test-file API. V8 reports a tagged template's call
// at the template itself, so a c`` snippet's location is its first line.
import { fileURLToPath } from 'node:url';

export interface SourceLocation {
  /** The file's path (a file: URL made a path), or what the stack says. */
  file: string;
  /** 1-based. */
  line: number;
}

const OWN_DIR = new URL('.', import.meta.url).href;
const OWN_PATH = fileURLToPath(OWN_DIR);
const UNKNOWN: SourceLocation = { file: '<unknown>', line: 0 };
/** Frames enough to get past kvmtest's own (a declaration is a few calls deep). */
const FRAMES = 12;

let wanted = true;

/**
 * Whether declarations record where they were made. A worker does not
 * need to: the runner has the locations from when it listed the tests, and
 * reading the stack is a good part of what a declaration costs.
 */
export function recordLocations(on: boolean): void {
  wanted = on;
}

/**
 * Where the code that called into kvmtest's test-file API is. Read from
 * V8's structured stack (call sites, not the formatted text): a file may
 * declare thousands of tests, each asking once.
 */
export function callerLocation(): SourceLocation {
  if (!wanted) return UNKNOWN;
  const savedPrepare = Error.prepareStackTrace;
  const savedLimit = Error.stackTraceLimit;
  const holder: { stack?: NodeJS.CallSite[] } = {};
  try {
    Error.stackTraceLimit = FRAMES;
    Error.prepareStackTrace = (_, frames) => frames;
    Error.captureStackTrace(holder, callerLocation);
    for (const frame of holder.stack ?? []) {
      const file = frame.getFileName();
      if (!file || file.startsWith(OWN_DIR) || file.startsWith(OWN_PATH) || file.startsWith('node:')) continue;
      return { file: file.startsWith('file:') ? fileURLToPath(file) : file, line: frame.getLineNumber() ?? 0 };
    }
    return UNKNOWN;
  } finally {
    Error.prepareStackTrace = savedPrepare;
    Error.stackTraceLimit = savedLimit;
  }
}

export { displayPath } from '../paths.js';
