/**
 * GET /openapi.json and GET /docs on real engines: the document is valid OpenAPI 3.1, lists
 * exactly the routes its port serves (from the app's route table), describes each one (kinds
 * from their zod schemas, the rest by hand), carries bearer security only with tokens, and the
 * reference page names every path.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hono } from 'hono';
import { Validator } from '@seriousme/openapi-schema-validator';
import { KINDS } from '../../src/kinds/registry.js';
import { UNDOCUMENTED, openApiPath } from '../../src/router/openapi/document.js';
import { startEngine, type RunningEngine, freePort } from '../helpers/engine-harness.js';

const ADMIN = 'admin-token-for-openapi-test';
let twoPorts: RunningEngine;
let onePort: RunningEngine;

beforeAll(async () => {
  twoPorts = await startEngine({ shards: 1, tokens: [{ token: ADMIN, scopes: ['admin'] }] });
  const port = await freePort();
  onePort = await startEngine({ shards: 1, ingestPort: port, queryPort: port });
});

afterAll(async () => {
  await twoPorts?.stop();
  await onePort?.stop();
});

async function documentOf(base: string, token?: string): Promise<any> {
  const res = await fetch(`${base}/openapi.json`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  return res.json();
}

function served(app: Hono): string[] {
  return [...new Set(app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${openApiPath(r.path).path}`))].sort();
}

function listed(doc: any): string[] {
  return Object.entries(doc.paths as Record<string, Record<string, unknown>>)
    .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
    .sort();
}

async function expectValid(doc: unknown): Promise<void> {
  const validator = new Validator();
  const result = await validator.validate(structuredClone(doc) as Record<string, unknown>);
  expect(result.errors ?? [], JSON.stringify(result.errors, null, 1)?.slice(0, 2000)).toEqual([]);
  expect(result.valid).toBe(true);
  expect(validator.version).toBe('3.1');
}

describe('GET /openapi.json', () => {
  it('is valid OpenAPI 3.1 on every port, with and without tokens (and the validator does catch a broken one)', async () => {
    const docs = [await documentOf(twoPorts.ingestUrl, ADMIN), await documentOf(twoPorts.queryUrl, ADMIN), await documentOf(onePort.queryUrl)];
    for (const doc of docs) {
      expect(doc.openapi).toBe('3.1.0');
      await expectValid(doc);
    }
    const broken = structuredClone(docs[1]);
    broken.paths['/query/aggregate'].post.responses = 'none';
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });

  it('lists exactly the routes each port serves, each one described', async () => {
    const cases: Array<[string, Hono, string | undefined]> = [
      [twoPorts.ingestUrl, twoPorts.engine.apps.ingest, ADMIN],
      [twoPorts.queryUrl, twoPorts.engine.apps.query, ADMIN],
      [onePort.queryUrl, onePort.engine.apps.query, undefined],
    ];
    for (const [base, app, token] of cases) {
      const doc = await documentOf(base, token);
      expect(listed(doc)).toEqual(served(app));
      const undescribed = listed(doc).filter((key) => {
        const [method, path] = key.split(' ');
        return doc.paths[path!][method!.toLowerCase()][UNDOCUMENTED] === true;
      });
      expect(undescribed).toEqual([]);
    }
    // The ingest port has no query routes and the query port no ingest routes.
    const ingestDoc = await documentOf(twoPorts.ingestUrl, ADMIN);
    expect(Object.keys(ingestDoc.paths)).toContain('/ingest/batch');
    expect(Object.keys(ingestDoc.paths)).not.toContain('/query/aggregate');
  });

  it('describes each query kind from its own schema: bodies, query parameters, path parameters, bounds from config', async () => {
    const doc = await documentOf(onePort.queryUrl);
    for (const kind of KINDS) {
      const op = doc.paths[openApiPath(kind.path).path][kind.method.toLowerCase()];
      expect(op.operationId, kind.name).toBe(kind.name);
      expect(op.summary).toBe(kind.summary);
      if (kind.input === 'body') expect(op.requestBody.content['application/json'].schema.type, kind.name).toBe('object');
    }
    const window = doc.paths['/query/window'].post.requestBody.content['application/json'].schema;
    expect(window.required).toEqual(['windowSize']);
    expect(window.additionalProperties).toBe(false);
    const aggregate = doc.paths['/query/aggregate'].post.requestBody.content['application/json'].schema;
    // maxGroupByKeys (4) and maxFilterValues (10000) from the engine's config.
    expect(JSON.stringify(aggregate)).toContain('"maxItems":4');
    expect(JSON.stringify(aggregate)).toContain('"maxItems":10000');
    const percentiles = doc.paths['/query/percentiles'].get.parameters as Array<{ name: string; in: string; style: string; explode: boolean }>;
    expect(percentiles.map((p) => p.name)).toEqual(expect.arrayContaining(['column', 'percentiles', 'groupBy', 'exact', 'from', 'to', 'event_type', 'user_id']));
    expect(percentiles.every((p) => p.in === 'query' && p.style === 'form' && p.explode === false)).toBe(true);
    const custom = doc.paths['/query/custom/{name}'].post.parameters[0];
    expect(custom).toMatchObject({ name: 'name', in: 'path', required: true });
    expect(doc.paths['/enrichment/{table}'].delete.parameters[0]).toMatchObject({ name: 'table', in: 'path', required: true });
  });

  it('describes error answers with the error body shape, and bearer security with the scopes only when tokens are configured', async () => {
    const open = await documentOf(onePort.queryUrl);
    expect(open.components.schemas.Error.required).toEqual(['error', 'message', 'request_id']);
    expect(Object.keys(open.components.schemas.Error.properties)).toEqual(['error', 'message', 'errors', 'request_id']);
    expect(open.paths['/query/aggregate'].post.responses['400'].$ref).toBe('#/components/responses/BadRequest');
    expect(open.paths['/query/aggregate'].post.responses['429']).toBeDefined();
    expect(open.paths['/ingest/batch'].post.responses['413']).toBeDefined();
    expect(open.components.securitySchemes).toBeUndefined();
    expect(open.paths['/query/aggregate'].post.security).toBeUndefined();
    expect(open.paths['/query/aggregate'].post.responses['401']).toBeUndefined();

    const secured = await documentOf(twoPorts.queryUrl, ADMIN);
    expect(secured.components.securitySchemes.bearer).toEqual(expect.objectContaining({ type: 'http', scheme: 'bearer' }));
    expect(secured.paths['/query/aggregate'].post.security).toEqual([{ bearer: ['query'] }]);
    expect(secured.paths['/enrichment/{table}'].post.security).toEqual([{ bearer: ['admin'] }]);
    expect(secured.paths['/query/custom'].get.security).toEqual([{ bearer: ['admin'] }]);
    expect(secured.paths['/dashboard/stream'].get.security).toEqual([{ bearer: ['query'] }, { queryToken: ['query'] }]);
    expect(secured.paths['/health'].get.security).toEqual([]);
    expect(secured.paths['/query/aggregate'].post.responses['401'].$ref).toBe('#/components/responses/Unauthorized');
    expect(secured.paths['/query/aggregate'].post.responses['403'].$ref).toBe('#/components/responses/Forbidden');
  });
});

describe('GET /docs', () => {
  it('answers one self-contained HTML page naming every path and method of the document', async () => {
    for (const [base, token] of [[onePort.queryUrl, undefined], [twoPorts.ingestUrl, ADMIN]] as const) {
      const res = await fetch(`${base}/docs`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      const html = await res.text();
      const doc = await documentOf(base, token);
      for (const key of listed(doc)) {
        const [method, path] = key.split(' ');
        expect(html, key).toContain(`<span class="m ${method!.toLowerCase()}">${method}</span> ${path!.replaceAll('&', '&amp;')}</h3>`);
      }
      // Nothing loaded from elsewhere: no script, no external stylesheet or image.
      expect(html).not.toMatch(/<script|<link[^>]+stylesheet|src="http/i);
      expect(html).toContain('request_id');
    }
  });
});
