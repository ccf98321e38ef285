/** GET /v1/models and /v1/models/{id} through the official SDK, on both transports: OpenAI's shapes and its 404. */
import OpenAI, { NotFoundError } from 'openai';
import t from 'tap';
import { ECHO_MODEL_ID } from '../../server/engines/echo/engine.js';
import { startTestServer, TRANSPORTS } from '../helpers/server.js';

for (const transport of TRANSPORTS) {
  t.test(`models through the SDK over ${transport}`, async (t) => {
    const server = await startTestServer({ transport });
    t.teardown(() => server.close(0));
    const client = new OpenAI({ apiKey: 'x', baseURL: `${server.url}/v1`, maxRetries: 0 });
    const now = Math.floor(Date.now() / 1000);

    const page = await client.models.list();
    t.equal(page.object, 'list', "the list is OpenAI's list object");
    t.equal(page.data.length, 1, 'one model is served');
    const listed = page.data[0]!;
    t.equal(listed.id, ECHO_MODEL_ID, 'the served model is listed under its own id');
    t.equal(listed.object, 'model');
    t.type(listed.owned_by, 'string');
    t.ok(listed.owned_by.length > 0, 'owned_by names an owner');
    t.ok(Number.isInteger(listed.created) && listed.created <= now && listed.created > now - 3600, `created is a recent unix time in seconds (${listed.created})`);

    const retrieved = await client.models.retrieve(ECHO_MODEL_ID);
    t.same(retrieved, listed, 'retrieving the listed id gives the same model object');

    try {
      await client.models.retrieve('gpt-4o');
      t.fail('an unknown model id was found');
    } catch (err) {
      t.ok(err instanceof NotFoundError, `an unknown id raises NotFoundError (got ${(err as Error).constructor.name})`);
      const error = err as NotFoundError;
      t.equal(error.status, 404);
      t.match(error.error, { message: /'gpt-4o' does not exist/, type: 'not_found_error', param: 'model', code: 'not_found' }, "the body is OpenAI's error object");
    }
  });
}
