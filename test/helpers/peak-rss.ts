// Loaded into a child process (`node --import`) by tests that bound its
// memory: when the process exits, writes its peak resident set size
// (VmHWM, in KiB) to the file named by KVMTEST_PEAK_RSS_FILE. Does nothing
// without that variable (the test runner also loads this file as a test).
import { readFileSync, writeFileSync } from 'node:fs';

export const PEAK_RSS_FILE_ENV = 'KVMTEST_PEAK_RSS_FILE';

const file = process.env[PEAK_RSS_FILE_ENV];
if (file) {
  process.on('exit', () => {
    const peak = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    writeFileSync(file, peak ?? 'unknown');
  });
}
