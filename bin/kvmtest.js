#!/usr/bin/env node
// The kvmtest command. The code lives in dist/ (built by `npm ci` / `npm run build`).
import { main } from '../dist/src/cli.js';

// A reader that goes away (`kvmtest run ... | head`) is not an error: the
// run goes on without output and still ends with its own exit status.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
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
