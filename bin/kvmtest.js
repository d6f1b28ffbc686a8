#!/usr/bin/env node
// The kvmtest command. The code lives in dist/: compiled by `npm run build` (and
// by `npm start`, `npm test`) in a clone, shipped compiled in the package.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

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

// In a clone, dist/ exists only once something has built it (`npm ci` does not).
const cli = new URL('../dist/src/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write(`kvmtest: ${fileURLToPath(cli)} is missing: in a clone of kvmtest, run \`npm run build\` first\n`);
  process.exit(2);
}
const { main } = await import(cli.href);

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (err) => {
    process.stderr.write(`kvmtest: internal error: ${err?.stack ?? err}\n`);
    process.exitCode = 2;
  },
);
