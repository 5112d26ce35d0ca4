/**
 * GET /docs: the API reference as one self-contained HTML page (inline CSS, no script, no CDN),
 * rendered on the server from the same OpenAPI document /openapi.json serves: every route with
 * its summary, scopes, parameters, request body schema and answers. Rendered once per port.
 */
import type { JsonSchema } from './route-docs.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
/** `code` spans from the document's backticks. */
const prose = (s: unknown) => esc(s).replace(/`([^`]+)`/g, '<code>$1</code>');

const CSS = `
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d232a;background:#f7f8fa}
header{background:#1d232a;color:#fff;padding:16px 28px}header h1{margin:0;font-size:20px}
main{max-width:1080px;margin:0 auto;padding:12px 28px 48px}nav a{margin-right:14px}
section.op{background:#fff;border:1px solid #dde1e6;border-radius:6px;margin:14px 0;padding:12px 16px}
h2{margin-top:28px;text-transform:capitalize}h3{margin:0 0 6px;font-size:16px;font-family:ui-monospace,monospace}
.m{display:inline-block;min-width:64px;padding:1px 6px;border-radius:4px;color:#fff;font-size:13px;text-align:center}
.get{background:#2f6fdf}.post{background:#1f9d55}.delete{background:#d64545}
table{border-collapse:collapse;width:100%;margin:6px 0}td,th{border-top:1px solid #e5e8ec;padding:4px 8px;text-align:left;vertical-align:top;font-size:14px}
pre{background:#f1f3f5;padding:8px;overflow:auto;font-size:12.5px;max-height:420px}code{font-family:ui-monospace,monospace;font-size:13px}
.scopes{color:#6b4fbb;font-size:13px}details summary{cursor:pointer;color:#2f6fdf}
`;

function schemaBlock(schema: unknown, label: string): string {
  return `<details><summary>${esc(label)}</summary><pre>${esc(JSON.stringify(schema, null, 2))}</pre></details>`;
}

const range = (min: unknown, max: unknown, unit: string) =>
  min === undefined && max === undefined ? '' : ` (${min ?? 0}–${max ?? '…'}${unit})`;

/** A schema in a few words: `string (1–64 chars)`, `list of number (1–100)`, `"sum" | "mean"`, `… or null`. */
export function typeSummary(s: JsonSchema | undefined, depth = 0): string {
  if (!s || depth > 4) return 'any';
  if (Array.isArray(s.enum)) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  const alternatives = (s.anyOf ?? s.oneOf) as JsonSchema[] | undefined;
  if (alternatives) {
    const parts = alternatives.filter((a) => a.type !== 'null').map((a) => typeSummary(a, depth + 1));
    const nullable = parts.length < alternatives.length ? ' or null' : '';
    return [...new Set(parts)].join(' | ') + nullable;
  }
  const types = Array.isArray(s.type) ? (s.type as string[]) : s.type ? [s.type as string] : [];
  if (types.length > 1) return types.filter((t) => t !== 'null').join(' | ') + (types.includes('null') ? ' or null' : '');
  switch (types[0]) {
    case 'string':
      return `string${range(s.minLength, s.maxLength, ' chars')}${s.pattern ? ` matching ${s.pattern as string}` : ''}`;
    case 'number':
    case 'integer':
      return `${types[0]}${range(s.minimum ?? s.exclusiveMinimum, s.maximum ?? s.exclusiveMaximum, '')}`;
    case 'array':
      return `list of ${typeSummary(s.items as JsonSchema | undefined, depth + 1)}${range(s.minItems, s.maxItems, ' items')}`;
    case undefined:
      return s.$ref ? String(s.$ref).split('/').pop()! : 'any';
    default:
      return types[0]!;
  }
}

function fieldsTable(schema: JsonSchema): string {
  const props = schema.properties as Record<string, JsonSchema> | undefined;
  if (schema.type !== 'object' || !props || Object.keys(props).length === 0) return '';
  const required = new Set((schema.required ?? []) as string[]);
  const rows = Object.entries(props)
    .map(([name, p]) => `<tr><td><code>${esc(name)}</code></td><td>${required.has(name) ? 'yes' : ''}</td><td>${esc(typeSummary(p))}</td><td>${p.description ? prose(p.description) : ''}</td></tr>`)
    .join('');
  return `<table><tr><th>field</th><th>required</th><th>type</th><th></th></tr>${rows}</table>`;
}

function parametersTable(params: JsonSchema[]): string {
  const rows = params
    .map((p) => {
      const s = p.schema as JsonSchema | undefined;
      return `<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.in)}</td><td>${p.required ? 'yes' : ''}</td><td>${esc(typeSummary(s))}</td><td>${p.description ? prose(p.description) : ''}</td></tr>`;
    })
    .join('');
  return `<table><tr><th>parameter</th><th>in</th><th>required</th><th>type</th><th></th></tr>${rows}</table>`;
}

function responsesTable(responses: Record<string, JsonSchema>, components: Record<string, Record<string, JsonSchema>>): string {
  const rows = Object.entries(responses)
    .map(([status, r]) => {
      if (typeof r.$ref === 'string') {
        // The shared error answers all have the one error body, shown once at the end.
        const shared = components.responses![(r.$ref as string).split('/').pop()!]!;
        return `<tr><td>${esc(status)}</td><td>${prose(shared.description)} — <a href="#errors">error body</a></td></tr>`;
      }
      const res = r;
      const content = (res.content ?? {}) as Record<string, JsonSchema>;
      const types = Object.keys(content).map((t) => `<code>${esc(t)}</code>`).join(' ');
      const schemas = Object.values(content).map((c) => (c.schema ? schemaBlock(c.schema, 'schema') : '')).join('');
      return `<tr><td>${esc(status)}</td><td>${prose(res.description)} ${types}${schemas}</td></tr>`;
    })
    .join('');
  return `<table><tr><th>status</th><th>answer</th></tr>${rows}</table>`;
}

/** The page for `doc` (an OpenAPI 3.1 document from ./document.ts). */
export function renderDocsPage(doc: JsonSchema): string {
  const paths = doc.paths as Record<string, Record<string, JsonSchema>>;
  const components = doc.components as Record<string, Record<string, JsonSchema>>;
  const byTag = new Map<string, string[]>();
  for (const [path, ops] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const tag = (op.tags as string[] | undefined)?.[0] ?? 'other';
      const security = op.security as Array<Record<string, string[]>> | undefined;
      const scopes = security && security.length > 0 ? `<div class="scopes">token scope: ${esc(Object.values(security[0]!)[0]!.join(' or '))}</div>` : security ? '<div class="scopes">no token needed</div>' : '';
      const body = op.requestBody as JsonSchema | undefined;
      const bodyHtml = body
        ? `<h4>Request body${body.required ? '' : ' (optional)'}</h4>${Object.entries(body.content as Record<string, JsonSchema>)
            .map(([t, c]) => `<div><code>${esc(t)}</code>${c.schema ? fieldsTable(c.schema as JsonSchema) + schemaBlock(c.schema, 'JSON Schema') : ''}</div>`)
            .join('')}`
        : '';
      const params = op.parameters as JsonSchema[] | undefined;
      const html =
        `<section class="op" id="${esc(`${method}-${path}`)}"><h3><span class="m ${esc(method)}">${esc(method.toUpperCase())}</span> ${esc(path)}</h3>` +
        `<div>${prose(op.summary)}</div>${op.description ? `<p>${prose(op.description)}</p>` : ''}${scopes}` +
        `${params ? `<h4>Parameters</h4>${parametersTable(params)}` : ''}${bodyHtml}<h4>Answers</h4>${responsesTable(op.responses as Record<string, JsonSchema>, components)}</section>`;
      let list = byTag.get(tag);
      if (!list) byTag.set(tag, (list = []));
      list.push(html);
    }
  }
  const info = doc.info as JsonSchema;
  const nav = [...byTag.keys()].map((t) => `<a href="#tag-${esc(t)}">${esc(t)}</a>`).join('');
  const sections = [...byTag].map(([tag, ops]) => `<h2 id="tag-${esc(tag)}">${esc(tag)}</h2>${ops.join('\n')}`).join('\n');
  const errorSchema = `<h2 id="errors">Error body</h2><section class="op"><p>Every error answer has this body.</p><pre>${esc(JSON.stringify(components.schemas!.Error, null, 2))}</pre></section>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(info.title)} API reference</title><style>${CSS}</style></head>
<body><header><h1>${esc(info.title)} ${esc(info.version)} — API reference</h1></header>
<main><p>${prose(info.description)} Machine-readable: <a href="openapi.json">openapi.json</a> (OpenAPI ${esc(doc.openapi)}).</p><nav>${nav}<a href="#errors">errors</a></nav>
${sections}
${errorSchema}
</main></body></html>
`;
}
