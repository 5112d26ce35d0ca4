/**
 * After a start on an existing data dir the shards replay their logs, enrichment tables included;
 * the main thread's catalog (which checks `<table>.<column>` names) is then rebuilt from the
 * shards' listings. Until it is, a query naming an unknown table column waits for it
 * (runtime.ts `checkDimensions`) instead of answering 400 for a table that exists.
 */
import type { Logger } from 'pino';
import { mergeEnrichmentTask } from '../merge/enrichment.js';
import type { ShardHandle } from '../shards/shard-handle.js';
import type { EnrichmentTables } from './enrichment-catalog.js';

export async function restoreEnrichmentCatalog(shards: readonly ShardHandle[], catalog: EnrichmentTables, timeoutMs: number, logger: Logger): Promise<void> {
  try {
    await Promise.all(shards.map((s) => s.whenReady()));
    const partials = await Promise.all(shards.map(async (s) => (await s.enrichList(timeoutMs)).ipc));
    const { tables } = mergeEnrichmentTask({}, partials);
    await catalog.restoreFrom(tables);
    if (tables.length > 0) logger.info({ tables: tables.map((t) => t.table) }, 'enrichment catalog restored');
  } catch (err) {
    logger.warn({ err }, 'enrichment catalog not restored: tables the shards restored are unknown to queries until upserted again');
    catalog.giveUpRestore();
  }
}
