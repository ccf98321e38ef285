/** Session open/close cycles shared by the CI soak test and `npm run soak`. */
import { TestClient } from '../helpers/native-client.js';

/** 200 ms of low noise at 16 kHz PCM16, in 20 ms packets: enough to exercise the decoder and VAD. */
const NOISE = Array.from({ length: 10 }, (_, i) => {
  const packet = new Int16Array(320);
  for (let j = 0; j < packet.length; j++) packet[j] = ((i * 7919 + j * 104_729) % 200) - 100;
  return new Uint8Array(packet.buffer);
});

/** One whole session: hello, some audio, `turns` text turns answered in full, then a clean close. */
export async function sessionCycle(wsUrl: string, turns = 1): Promise<void> {
  const client = await TestClient.connect(`${wsUrl}/v1/stream`);
  await client.hello({ codec: 'pcm16', sampleRate: 16000, vad: { bargeIn: false } });
  for (const packet of NOISE) client.sendAudio(packet);
  for (let turn = 1; turn <= turns; turn++) {
    client.send({ type: 'text', text: `soak turn ${turn}` });
    await client.waitFor((m) => m.type === 'done' || m.type === 'busy' || (m.type === 'error' && m.turnId !== undefined), 30_000, client.messages.length - 1);
    await client.waitForTurnsDone(turn, 30_000).catch(() => undefined);
  }
  client.close();
  await client.waitForClose();
}

/** Runs `cycles` sessions, `concurrency` at a time. */
export async function runCycles(wsUrl: string, cycles: number, concurrency: number, turns = 1): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < cycles) {
        next++;
        await sessionCycle(wsUrl, turns);
      }
    }),
  );
}
