/** Which offered answer type an Accept header prefers, parsed by Hono as a request's header. */
import { describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { acceptedType } from './accept.js';

const JSON_TYPE = 'application/json';
const ARROW = 'application/vnd.apache.arrow.stream';
const NDJSON = 'application/x-ndjson';

async function chosen(accept: string | null, offered: string[] = [JSON_TYPE, ARROW]): Promise<string | null> {
  const app = new Hono().get('/', (c) => c.json({ type: acceptedType(c, offered) }));
  const res = await app.request('/', accept === null ? {} : { headers: { accept } });
  return ((await res.json()) as { type: string | null }).type;
}

describe('acceptedType', () => {
  it('gives the default (first offered) with no Accept, an empty one, */* or a browser’s', async () => {
    expect(await chosen(null)).toBe(JSON_TYPE);
    expect(await chosen('')).toBe(JSON_TYPE);
    expect(await chosen('*/*')).toBe(JSON_TYPE);
    expect(await chosen('text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8')).toBe(JSON_TYPE);
    expect(await chosen('application/json, text/plain, */*')).toBe(JSON_TYPE);
    expect(await chosen('*/*', [NDJSON, ARROW])).toBe(NDJSON);
  });

  it('gives the type named, in any case, with a utf-8 charset', async () => {
    expect(await chosen(ARROW)).toBe(ARROW);
    expect(await chosen('Application/VND.Apache.Arrow.Stream')).toBe(ARROW);
    expect(await chosen(JSON_TYPE)).toBe(JSON_TYPE);
    expect(await chosen('application/json; charset=UTF-8')).toBe(JSON_TYPE);
    expect(await chosen(ARROW, [NDJSON, ARROW])).toBe(ARROW);
    expect(await chosen('application/x-ndjson', [NDJSON, ARROW])).toBe(NDJSON);
  });

  it('orders by q, then by the more specific range, then by the client’s order', async () => {
    expect(await chosen(`application/json;q=0.5, ${ARROW}`)).toBe(ARROW);
    expect(await chosen(`${ARROW};q=0.5, application/json`)).toBe(JSON_TYPE);
    expect(await chosen(`application/json;q=0.9, ${ARROW};q=0.1`)).toBe(JSON_TYPE);
    expect(await chosen(`application/json ; q=0.2 , ${ARROW} ; q=0.3`)).toBe(ARROW);
    // equal q: the client's order
    expect(await chosen(`${ARROW}, application/json`)).toBe(ARROW);
    expect(await chosen(`application/json, ${ARROW}`)).toBe(JSON_TYPE);
    // a type named beats a wildcard at the same q; a range's q applies to what it decides
    expect(await chosen(`*/*, ${ARROW}`)).toBe(ARROW);
    expect(await chosen(`application/*;q=0.1, ${ARROW}`)).toBe(ARROW);
    expect(await chosen(`application/*;q=0.9, ${ARROW};q=0.1`)).toBe(JSON_TYPE);
  });

  it('lets q=0 refuse a type a wildcard would allow', async () => {
    expect(await chosen('*/*, application/json;q=0')).toBe(ARROW);
    expect(await chosen(`application/*, ${ARROW};q=0`)).toBe(JSON_TYPE);
  });

  it('answers null when nothing offered is acceptable', async () => {
    expect(await chosen('text/csv')).toBeNull();
    expect(await chosen('text/*, image/png')).toBeNull();
    expect(await chosen('application/json;q=0')).toBeNull();
    expect(await chosen(`*/*;q=0`)).toBeNull();
    expect(await chosen(JSON_TYPE, [NDJSON, ARROW])).toBeNull();
    // a media type parameter the offered type does not have
    expect(await chosen(`${ARROW};version=2`)).toBeNull();
    expect(await chosen('application/json;charset=latin1')).toBeNull();
  });

  it('reads quoted parameters with commas and parameters after q', async () => {
    expect(await chosen(`text/plain;x="a,b", ${ARROW}`)).toBe(ARROW);
    expect(await chosen(`${ARROW};q=0.7;level=1, application/json;q=0.6`)).toBe(ARROW);
  });
});
