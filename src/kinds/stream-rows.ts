/**
 * Finished rows partials (a by-user aggregate) of more bytes than this, all shards together, are
 * merged on the HTTP thread as the answer is sent (src/kinds/answer.ts, RowsMerge); smaller ones
 * in the merge pool, then sent. Streaming overlaps the merge with the transfer (Q1b at 10 M
 * events, 243 MB: 2,822 -> 2,553-2,564 ms) but the merge's slices run on the thread that takes
 * ingest requests: with 15.7 MB by-user answers streamed back to back, single-event ingest p99
 * went from 10 to 17-32 ms (bench:isolation), so only answers this large stream.
 */
export const STREAM_ROWS_FROM = 64 * 1024 * 1024;
