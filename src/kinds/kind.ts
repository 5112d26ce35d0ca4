/**
 * What a query kind is: one declarative module (route, request schema, how it runs, the answer's
 * shape in its TSDoc), listed once in `./registry.ts`. The analytics app (src/router/query-app.ts)
 * loops over that list and gives every kind the same envelope: input reading, schema validation,
 * the enrichment-catalog check of the dimensions it names, `query_time_ms` and `timestamp`, the
 * answer-size bound and errors. Kinds know nothing of HTTP: they throw RequestError / ShardError.
 */
import type { z } from 'zod';
import type { Logger } from 'pino';
import type { MergeDef } from '../merge/merge-def.js';
import type { RequestLimits } from './limits.js';
import type { QueryPlan } from './plans.js';
import type { CustomListResult } from '../shards/protocol.js';

export type Method = 'GET' | 'POST' | 'DELETE';

/** UTF-8 JSON produced elsewhere (serialized in the merge pool), spliced into the answer as is. */
export class JsonText {
  constructor(readonly bytes: Uint8Array) {}
}

/**
 * A field's UTF-8 JSON made while it is sent: `byteLength` bytes in all, known up front (so the
 * answer is bounded and gets a Content-Length before any byte goes out), written by `fill` into
 * the buffers it is given as the client takes them (src/kinds/answer.ts). `fill` returns how
 * many bytes it wrote, 0 once it has written them all.
 */
export class JsonStream {
  constructor(
    readonly byteLength: number,
    readonly fill: (out: Uint8Array) => number,
  ) {}
}

/**
 * Binary bytes made while they are sent (a large Arrow answer's record batches, gathered in the
 * merge pool: MergePool.stream): `byteLength` bytes in all, known before the first is made (so
 * the answer is bounded, budgeted and gets a Content-Length before any byte goes out). `next`
 * gives the next piece in order, null after the last, and rejects when the making failed (the
 * body then errors and the connection is cut: never a short answer that looks whole). `cancel`
 * when nobody wants the rest (the client has gone, the answer was refused): the making stops and
 * what was made is dropped.
 */
export class BytesFeed {
  constructor(
    readonly byteLength: number,
    readonly next: () => Promise<Uint8Array | null>,
    readonly cancel: () => void,
  ) {}
}

/**
 * A binary answer (an Arrow IPC stream): its bytes as pieces, in order, each made already or a
 * BytesFeed made while it is sent. The app bounds it by `maxResponseBytes` and the answer budget
 * like a JSON answer, sends it with a Content-Length, and puts the envelope's fields in headers
 * (`X-Query-Time-Ms`, `X-Timestamp`).
 */
export class BytesAnswer {
  readonly bytes: number;

  constructor(
    readonly contentType: string,
    readonly pieces: Array<Uint8Array | BytesFeed>,
  ) {
    this.bytes = pieces.reduce((n, p) => n + p.byteLength, 0);
  }
}

/** A streamed answer (export): content type and a pull-based body. */
export interface StreamAnswer {
  stream: ReadableStream<Uint8Array>;
  contentType: string;
}

/** A kind's answer: the JSON object without the envelope's fields, bytes, or a stream. */
export type Answer = Record<string, unknown> | BytesAnswer | StreamAnswer;

export function isStreamAnswer(a: Answer): a is StreamAnswer {
  return (a as Partial<StreamAnswer>).stream instanceof ReadableStream;
}

/** Ingestion figures the dashboard shows (the router's metrics). */
export interface IngestionSummary {
  total_events: number;
  throughput_per_second: number;
  rejected_events: number;
  buffered: number;
}

/**
 * What a kind can do while it runs one request. Built per request by the app loop. Every fan-out
 * of one request sees the same events: the visibility cut taken at its first (fanout.ts).
 */
export interface KindRuntime {
  readonly limits: RequestLimits;
  readonly shardCount: number;
  /** Path parameters (`/query/custom/:name` → `{name}`). */
  readonly params: Readonly<Record<string, string>>;
  readonly logger: Logger;
  /** Epoch ms after which the request has timed out; fan-outs and merges get the rest. */
  readonly deadline: number;
  /** One plan to every shard (each may get its own body); one partial per shard, in shard order. */
  fanOut(plan: QueryPlan, bodies?: ReadonlyArray<Uint8Array | undefined>): Promise<Uint8Array[]>;
  /** Several plans in one round trip per shard; per plan, one partial per shard. */
  fanOutMany(plans: QueryPlan[]): Promise<Uint8Array[][]>;
  /** One plan to one shard (paged export: each page gets its own `deadline`). */
  queryShard(shard: number, plan: QueryPlan, deadline?: number): Promise<Uint8Array>;
  /** Throws ShardError (503) unless every shard is ready. */
  requireAllReady(): void;
  /** Merges the partials (in the merge pool when large; aborted at the deadline). */
  merge<S, O>(merge: MergeDef<S, O>, spec: S, partials: Uint8Array[], deadline?: number): Promise<O>;
  /**
   * Merges in the pool with `merge.stream`: answers once the output's length is known, with a
   * feed of its pieces as the pool makes them (aborted at the deadline, stopped when cancelled).
   */
  mergeStream<S, O>(merge: MergeDef<S, O>, spec: S, partials: Uint8Array[]): Promise<BytesFeed>;
  /** Merges and serializes off the main thread: the answer (or its `field`) as JSON text. */
  mergeJson<S, O>(merge: MergeDef<S, O>, spec: S, partials: Uint8Array[], field?: string): Promise<JsonText>;
  customPlugins(): Promise<CustomListResult>;
  ingestion(): IngestionSummary;
}

export interface QueryKind<Req = any> {
  /** Stable name (logs, metrics label, OpenAPI operationId). */
  name: string;
  method: Method;
  path: string;
  /** Where the request is read from: a JSON body, the query string, or nothing. */
  input: 'body' | 'query' | 'none';
  /** One line for docs and OpenAPI. */
  summary: string;
  /**
   * A kind that writes its answer in several formats: the values of its request's `format` field
   * (in the body or the query string, as `input` says) and their content types, the default
   * first. A request that names no `format` gets the one its Accept header prefers, and a 406
   * when it allows none; a named `format` wins over Accept (src/router/query-app.ts).
   */
  formats?: Readonly<Record<string, string>>;
  /** The request schema, built once per engine from the configured bounds. */
  schema(limits: RequestLimits): z.ZodType<Req>;
  /** Dimensions the request names as [field, name], checked against the enrichment catalog. */
  dimensions?(req: Req): Array<[field: string, name: string]>;
  run(req: Req, rt: KindRuntime): Promise<Answer>;
}

/** Identity with inference: `defineKind({...})` checks a module against QueryKind<Req>. */
export function defineKind<Req>(kind: QueryKind<Req>): QueryKind<Req> {
  return kind;
}
