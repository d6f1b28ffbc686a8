// The process that loads test files for the runner: it imports each file
// (its top-level code is the user's, so it runs here rather than in the
// runner), builds the file's snippets, and sends back the file's tests as
// plain test cases. It exits when done, or with the runner.
import { constants } from 'node:os';
import { setParentDeathSignal } from '../kvm/libc.js';
import { buildSnippets } from '../testfile/build.js';
import { planTestFile } from '../testfile/cases.js';
import { loadTestFile, TestFileError } from '../testfile/load.js';
import type { CollectMessage, FromCollector } from './collect.js';
import { inCi } from './progress.js';

process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
setParentDeathSignal(constants.signals.SIGKILL);

function send(message: FromCollector): Promise<void> {
  return new Promise((resolve) => process.send!(message, () => resolve()));
}

async function collect(files: readonly string[]): Promise<void> {
  // Files load one at a time (their declarations go to one collector);
  // their snippets then build side by side.
  const builds: Array<Promise<void>> = [];
  for (const file of files) {
    let loaded;
    try {
      loaded = await loadTestFile(file);
    } catch (err) {
      if (!(err instanceof TestFileError)) throw err;
      builds.push(send({ type: 'file', file, error: err.message }));
      continue;
    }
    const snippets = loaded.tests.flatMap((d) => (d.guest && (d.guest.kind === 'c' || d.guest.kind === 'c-unit' || d.guest.kind === 'asm') && !d.error ? [d.guest] : []));
    builds.push(
      buildSnippets(snippets).then((build) =>
        send({ type: 'file', file, tests: planTestFile(file, loaded, build, inCi(process.env)), warnings: build.warnings }),
      ),
    );
  }
  await Promise.all(builds);
  await send({ type: 'done' });
}

process.on('message', (message: CollectMessage) => {
  collect(message.files).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`kvmtest: internal error while loading test files: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(70);
    },
  );
});
process.on('disconnect', () => process.exit(0));
