import t from 'tap';
import { TestClient } from '../helpers/native-client.js';
import { startTestServer, TRANSPORTS } from '../helpers/server.js';
import { selfSignedCert } from '../helpers/tls.js';

const tls = await selfSignedCert();
t.teardown(tls.dispose);

for (const transport of TRANSPORTS) {
  t.test(`TLS (wss + https) over ${transport}`, async (t) => {
    const server = await startTestServer({ transport, tlsCert: tls.cert, tlsKey: tls.key });
    t.teardown(() => server.close(0));
    t.match(server.url, /^https:/);
    const client = await TestClient.connect(`${server.wsUrl}/v1/stream`, { rejectUnauthorized: false });
    await client.hello({ codec: 'pcm16', sampleRate: 16000 });
    client.send({ type: 'text', text: 'over tls' });
    t.match(await client.waitFor((m) => m.type === 'done'), { finish: 'stop' });
    t.match(client.turns()[0]!.text, /read "over tls"/);
    client.close();
  });
}
