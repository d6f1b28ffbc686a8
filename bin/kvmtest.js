#!/usr/bin/env node
// The kvmtest command. The code lives in dist/ (built by `npm ci` / `npm run build`).
import { main } from '../dist/src/cli.js';

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (err) => {
    process.stderr.write(`kvmtest: internal error: ${err?.stack ?? err}\n`);
    process.exitCode = 2;
  },
);
