// Which paths are test files, in one place: the runner, its workers and the
// verdict's wording all ask, and none of them needs the loader for it.

/** The test files kvmtest run picks up: NAME.kvmtest.ts, .mts, .js or .mjs. */
export const TEST_FILE = /\.kvmtest\.(ts|mts|js|mjs)$/;
