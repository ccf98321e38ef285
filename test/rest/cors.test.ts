/**
 * CORS for browser clients of the REST API, on both transports. The request headers are the
 * ones the official SDK really sends (captured from its fetch), so a browser running it gets
 * its preflight answered; the per-key rate limit's 429 must be readable from a page too.
 */
import OpenAI, { RateLimitError } from 'openai';
import t from 'tap';
import { ECHO_MODEL_ID } from '../../server/engines/echo/engine.js';
import { startTestServer, TRANSPORTS } from '../helpers/server.js';

const ALLOWED = 'https://app.example';
const OTHER = 'https://elsewhere.example';
/** Headers a browser sends without a preflight, or sets itself. */
const NOT_PREFLIGHTED = new Set(['accept', 'user-agent', 'content-length']);

/** The header names the SDK sends with a chat completion, as a browser lists them in Access-Control-Request-Headers. */
async function sdkRequestHeaders(baseURL: string): Promise<string[]> {
  let names: string[] = [];
  const client = new OpenAI({
    apiKey: 'key-a',
    baseURL,
    maxRetries: 0,
    fetch: (url, init) => {
      names = [];
      new Headers(init?.headers).forEach((_value, name) => names.push(name));
      return fetch(url, init);
    },
  });
  await client.chat.completions.create({ model: ECHO_MODEL_ID, messages: [{ role: 'user', content: 'hi' }] });
  return names.filter((name) => !NOT_PREFLIGHTED.has(name)).sort();
}

function listOf(header: string | null): string[] {
  return (header ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
}

function preflight(url: string, origin: string, headers: string[]): Promise<Response> {
  return fetch(url, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': headers.join(',') } });
}

for (const transport of TRANSPORTS) {
  t.test(`CORS over ${transport}`, async (t) => {
    const server = await startTestServer({ transport, corsOrigins: [ALLOWED], apiKeys: ['key-a', 'key-b'], requestsPerMinutePerKey: 2 });
    t.teardown(() => server.close(0));
    const endpoint = `${server.url}/v1/chat/completions`;

    const requested = await sdkRequestHeaders(`${server.url}/v1`);
    t.ok(requested.includes('authorization') && requested.includes('content-type'), `the SDK sends authorization and content-type (${requested.join(',')})`);
    t.ok(requested.some((h) => h.startsWith('x-stainless-')), 'and its own X-Stainless-* headers');

    const allowed = await preflight(endpoint, ALLOWED, requested);
    t.ok(allowed.status === 204 || allowed.status === 200, `the preflight succeeds (${allowed.status})`);
    t.equal(allowed.headers.get('access-control-allow-origin'), ALLOWED, 'the allowed origin is named');
    const allowedHeaders = listOf(allowed.headers.get('access-control-allow-headers'));
    t.same(requested.filter((h) => !allowedHeaders.includes(h)), [], 'every header the SDK sends is allowed');
    t.ok(listOf(allowed.headers.get('access-control-allow-methods')).includes('post'), 'POST is allowed');
    t.match(allowed.headers.get('vary') ?? '', /access-control-request-headers/i, 'caches keep preflights for other header lists apart');

    const refused = await preflight(endpoint, OTHER, requested);
    t.equal(refused.headers.get('access-control-allow-origin'), null, 'another origin gets no ACAO on the preflight');
    t.equal(refused.headers.get('access-control-allow-headers'), null, 'nor any allowed headers');
    const refusedGet = await fetch(`${server.url}/v1/models`, { headers: { origin: OTHER, authorization: 'Bearer key-a' } });
    t.equal(refusedGet.status, 200);
    t.equal(refusedGet.headers.get('access-control-allow-origin'), null, 'nor on a response');

    // key-b's own allowance of 2 per minute: the third request is refused by the guard, before the router.
    const page = new OpenAI({ apiKey: 'key-b', baseURL: `${server.url}/v1`, maxRetries: 0, defaultHeaders: { origin: ALLOWED } });
    const first = await page.models.list().asResponse();
    t.equal(first.headers.get('access-control-allow-origin'), ALLOWED, 'a normal response carries ACAO');
    await page.models.list();
    try {
      await page.models.list();
      t.fail('the rate limit did not apply');
    } catch (err) {
      t.ok(err instanceof RateLimitError, `over the limit: RateLimitError (got ${(err as Error).constructor.name})`);
      const limited = err as RateLimitError;
      t.equal(limited.code, 'rate_limited', 'it is the per-key rate limit');
      t.equal(limited.headers.get('access-control-allow-origin'), ALLOWED, 'the 429 carries ACAO, so the page can read it');
      t.ok(listOf(limited.headers.get('access-control-expose-headers')).includes('retry-after'), 'and exposes Retry-After');
      t.ok(Number(limited.headers.get('retry-after')) >= 1, `Retry-After says when to retry (${limited.headers.get('retry-after')})`);
    }
  });
}
