import t from 'tap';
import { EarshotError } from '../../protocol/errors.js';
import { decodeClientMessage, encodeClientMessage, isRawAudio } from '../../protocol/codec.js';

t.test('error codes map to http status and close code', async (t) => {
  const err = new EarshotError('busy', 'queue full', { retryAfterMs: 500 });
  t.equal(err.httpStatus, 429);
  t.equal(err.closeCode, 1013);
  t.equal(err.retryable, true);
  t.equal(EarshotError.from(new Error('secret path /x')).message, 'internal error');
});

t.test('client frames: raw audio, valid message, garbage', async (t) => {
  t.ok(isRawAudio(new Uint8Array([0, 1, 2, 3])), 'tag byte 0 is raw audio');
  const msg = encodeClientMessage({ type: 'text', text: 'hi' });
  t.notOk(isRawAudio(msg), 'a msgpack map is not raw audio');
  t.notOk(isRawAudio(new Uint8Array(0)), 'nor is an empty frame');
  t.same(decodeClientMessage(msg), { type: 'text', text: 'hi' });
  t.throws(() => decodeClientMessage(new Uint8Array(0)), { code: 'bad_message' });
  t.throws(() => decodeClientMessage(new Uint8Array([0xc1])), { code: 'bad_message' });
  t.throws(() => decodeClientMessage(encodeClientMessage({ type: 'nope' } as never)), { code: 'bad_message' });
});
