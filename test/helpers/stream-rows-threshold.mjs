/**
 * TEST ONLY, for an engine in a child process (`startMain(args, { nodeArgs: ['--import', this file] })`,
 * after tsx): lowers STREAM_ROWS_FROM (src/kinds/stream-rows.ts) to the bytes in
 * `SHARDLYTICS_TEST_STREAM_ROWS_FROM`, so a by-user JSON answer of a few MB takes the path merged
 * while it is sent, as `vi.mock` does for an engine in the test's own process.
 */
import { register } from 'node:module';

register('./stream-rows-threshold-hooks.mjs', import.meta.url);
