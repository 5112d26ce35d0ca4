/**
 * The OpenAPI 3.1 document of one port: exactly the routes its app serves (read from the app's
 * route table, so a route added anywhere shows up, and a route another port serves does not).
 * Query kinds are described from their own zod request schemas, built with the engine's bounds
 * (`z.toJSONSchema`, input side): the document cannot drift from the validation. Every other
 * route has its hand-written entry in ./route-docs.ts; a served route with neither is listed
 * with an "undocumented" marker (and the test fails on it).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { QueryKind } from '../../kinds/kind.js';
import type { RequestLimits } from '../../kinds/limits.js';
import { KINDS } from '../../kinds/registry.js';
import { fromRoot } from '../../paths.js';
import { routeAccess } from '../access/route-scopes.js';
import { QUERY_TOKEN_ROUTES } from '../access/route-scopes.js';
import { ERROR_RESPONSES, PATH_PARAMETERS, QUERY_ERRORS, ROUTE_DOCS, SHARED_SCHEMAS, type JsonSchema, type RouteDoc } from './route-docs.js';

export const UNDOCUMENTED = 'x-undocumented';

export interface ServedRoute {
  method: string;
  path: string;
}

export interface DocumentOptions {
  routes: readonly ServedRoute[];
  limits: RequestLimits;
  /** Bearer tokens are configured: operations carry their security requirement. */
  tokens: boolean;
}

const VERSION = (JSON.parse(readFileSync(fromRoot('package.json'), 'utf8')) as { version: string }).version;

/** `/enrichment/:table` → `/enrichment/{table}` (a Hono `:name{regex}` loses its regex). */
export function openApiPath(honoPath: string): { path: string; params: string[] } {
  const params: string[] = [];
  const path = honoPath.replace(/:([A-Za-z_][A-Za-z0-9_]*)(\{[^}]*\})?\??/g, (_m, name: string) => {
    params.push(name);
    return `{${name}}`;
  });
  return { path, params };
}

/** The JSON Schema of a zod schema's input, as a 3.1 Schema Object (no `$schema` of its own). */
function inputSchema(schema: z.ZodType): JsonSchema {
  const out = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  delete out.$schema;
  // `#/$defs/…` would resolve against the OpenAPI document: none of the kinds produce any today.
  if ('$defs' in out) throw new Error('openapi: a kind schema with $defs needs them hoisted to components');
  return out;
}

function kindOperation(kind: QueryKind, limits: RequestLimits): { doc: RouteDoc; extra: JsonSchema } {
  const schema = inputSchema(kind.schema(limits));
  const extra: JsonSchema = { operationId: kind.name };
  const doc: RouteDoc = { tag: 'query', summary: kind.summary, responses: { '200': { description: 'the answer, with query_time_ms and timestamp', content: { 'application/json': { schema: { $ref: '#/components/schemas/QueryAnswer' } } } } } };
  const errors = [...QUERY_ERRORS];
  if (kind.input === 'body') {
    extra.requestBody = { required: false, description: 'an empty body is `{}`', content: { 'application/json': { schema } } };
    errors.push(413, 415);
  } else if (kind.input === 'query') {
    const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
    const required = new Set((schema.required ?? []) as string[]);
    // Lists are comma-separated (`percentiles=0.5,0.95`): form style without explode.
    extra.parameters = Object.entries(props).map(([name, s]) => ({ name, in: 'query', required: required.has(name), style: 'form', explode: false, schema: s }));
  }
  if (kind.path.includes(':')) errors.push(404);
  if (kind.formats) errors.push(406);
  doc.errors = errors;
  return { doc, extra };
}

function errorRefs(statuses: number[]): Record<string, JsonSchema> {
  const out: Record<string, JsonSchema> = {};
  for (const s of [...new Set(statuses)].sort((a, b) => a - b)) out[String(s)] = { $ref: `#/components/responses/${ERROR_RESPONSES[s]!.name}` };
  return out;
}

/** Builds the document for `routes` (method + Hono pattern, as the app lists them). */
export function buildOpenApi(opts: DocumentOptions): JsonSchema {
  const kinds = new Map(KINDS.map((k) => [`${k.method} ${k.path}`, k]));
  const paths: Record<string, Record<string, JsonSchema>> = {};
  const seen = new Set<string>();
  for (const r of opts.routes) {
    const key = `${r.method} ${r.path}`;
    if (r.method === 'ALL' || seen.has(key)) continue;
    seen.add(key);
    const kind = kinds.get(key);
    const generated = kind ? kindOperation(kind, opts.limits) : null;
    const written = ROUTE_DOCS[key];
    const doc: RouteDoc = { ...(generated?.doc ?? { tag: 'operations', summary: key }), ...(written ?? {}) };
    if (written?.responses === undefined && generated) doc.responses = generated.doc.responses;
    if (written?.errors === undefined && generated) doc.errors = generated.doc.errors;
    const { path, params } = openApiPath(r.path);
    const op: JsonSchema = {
      tags: [doc.tag],
      summary: doc.summary,
      ...(doc.description ? { description: doc.description } : {}),
      operationId: (generated?.extra.operationId as string | undefined) ?? `${r.method.toLowerCase()}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, ch: string | undefined) => (ch ? ch.toUpperCase() : ''))}`,
      ...(!kind && !written ? { [UNDOCUMENTED]: true } : {}),
    };
    const parameters = [
      ...params.map((name) => ({ name, in: 'path', required: true, schema: PATH_PARAMETERS[name] ?? { type: 'string' } })),
      ...((generated?.extra.parameters as JsonSchema[] | undefined) ?? []),
      ...(opts.tokens ? (doc.parameters ?? []) : (doc.parameters ?? []).filter((p) => p.name !== 'token')),
    ];
    if (parameters.length > 0) op.parameters = parameters;
    const body = doc.requestBody ?? generated?.extra.requestBody;
    if (body) op.requestBody = body;
    const access = routeAccess(r.method, r.path);
    const errors = [...(doc.errors ?? []), 500];
    if (opts.tokens && access !== 'open') errors.push(401, 403);
    op.responses = { ...(doc.responses ?? { '200': { description: 'success' } }), ...errorRefs(errors) };
    if (opts.tokens) {
      const scopes = access === 'open' ? [] : [...access];
      op.security = access === 'open' ? [] : [{ bearer: scopes }, ...(QUERY_TOKEN_ROUTES.has(key) ? [{ queryToken: scopes }] : [])];
      if (access !== 'open') op.description = `${op.description ? `${op.description as string}\n\n` : ''}Needs a token with scope ${scopes.join(' or ')} (admin implies every scope).`;
    }
    (paths[path] ??= {})[r.method.toLowerCase()] = op;
  }
  const responses = Object.fromEntries(
    Object.values(ERROR_RESPONSES).map(({ name, description }) => [name, { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }]),
  );
  const components: JsonSchema = { schemas: SHARED_SCHEMAS, responses };
  if (opts.tokens) {
    components.securitySchemes = {
      bearer: { type: 'http', scheme: 'bearer', description: 'a configured token: `Authorization: Bearer <token>`; scopes ingest, query, admin (admin implies every scope)' },
      queryToken: { type: 'apiKey', in: 'query', name: 'token', description: 'the same token as `?token=`, accepted only by the live page (GET /) and its event stream' },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'shardlytics',
      version: VERSION,
      description: 'Sharded real-time analytics engine: ingest events, query aggregates, windows, percentiles, top-N, anomalies, funnels. Every error body is `Error`; every answer carries an `x-request-id` header.',
    },
    tags: [
      { name: 'ingest', description: 'event ingestion' },
      { name: 'query', description: 'analytics query kinds' },
      { name: 'enrichment', description: 'tables joined to events on user_id' },
      { name: 'operations', description: 'health, readiness, stats, metrics, this document' },
      { name: 'page', description: 'the live dashboard page' },
    ],
    paths,
    components,
  };
}
