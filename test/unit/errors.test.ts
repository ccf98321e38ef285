import t from 'tap';
import { EarshotError } from '../../protocol/errors.js';
import { decodeClientFrame, encodeClientMessage } from '../../protocol/codec.js';

t.test('error codes map to http status and close code', async (t) => {
  const err = new EarshotError('busy', 'queue full', { retryAfterMs: 500 });
  t.equal(err.httpStatus, 429);
  t.equal(err.closeCode, 1013);
  t.equal(err.retryable, true);
  t.equal(EarshotError.from(new Error('secret path /x')).message, 'internal error');
});

t.test('client frames: raw audio, valid message, garbage', async (t) => {
  const raw = decodeClientFrame(new Uint8Array([0, 1, 2, 3]));
  t.same(raw.kind === 'raw' && Array.from(raw.audio), [1, 2, 3]);
  const msg = decodeClientFrame(encodeClientMessage({ type: 'text', text: 'hi' }));
  t.same(msg, { kind: 'message', message: { type: 'text', text: 'hi' } });
  t.throws(() => decodeClientFrame(new Uint8Array([0xc1])), { code: 'bad_message' });
  t.throws(() => decodeClientFrame(encodeClientMessage({ type: 'nope' } as never)), { code: 'bad_message' });
});
