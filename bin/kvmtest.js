#!/usr/bin/env node
// The kvmtest command. The code lives in dist/ (built by `npm ci` / `npm run build`).
import { main } from '../dist/src/cli.js';

// A reader that goes away (`kvmtest run ... | head`) is not an error: the
// run goes on without output and still ends with its own exit status. Any
// other failure to write (a full disk, /dev/full) leaves the report unwritten:
// say so in one line and stop with status 2 (exit handlers remove temporary
// files; workers die with this process).
for (const [name, stream] of [['standard output', process.stdout], ['standard error', process.stderr]]) {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') return;
    if (stream !== process.stderr) {
      try {
        process.stderr.write(`kvmtest: cannot write the report to ${name}: ${err.code ? `${err.code}: ` : ''}${err.message.replace(/^\w+: /, '').replace(/, write$/, '')}\n`);
      } catch {
        // nowhere left to say it
      }
    }
    process.exit(2);
  });
}

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (err) => {
    process.stderr.write(`kvmtest: internal error: ${err?.stack ?? err}\n`);
    process.exitCode = 2;
  },
);
