/**
 * The load hook of stream-rows-threshold.mjs. Registered after tsx, so it runs first and gets the
 * module as tsx compiled it; it throws when the constant is not where it expects, so a changed
 * source fails the engine's start instead of leaving the test on the unstreamed path.
 */
export async function load(url, context, nextLoad) {
  const out = await nextLoad(url, context);
  if (!url.endsWith('/src/kinds/stream-rows.ts')) return out;
  const bytes = Number(process.env.SHARDLYTICS_TEST_STREAM_ROWS_FROM);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new Error(`expected SHARDLYTICS_TEST_STREAM_ROWS_FROM to be a positive integer, got ${process.env.SHARDLYTICS_TEST_STREAM_ROWS_FROM}`);
  const source = String(out.source);
  const pattern = /STREAM_ROWS_FROM\s*=\s*64\s*\*\s*1024\s*\*\s*1024/;
  if (!pattern.test(source)) throw new Error(`expected \`STREAM_ROWS_FROM = 64 * 1024 * 1024\` in ${url}, got: ${source.slice(0, 200)}`);
  return { ...out, source: source.replace(pattern, `STREAM_ROWS_FROM = ${bytes}`) };
}
