// The library is TypeScript run through tsx, like the server; this entry lets `import ... from 'earshot/client'` work under plain node.
import { register } from 'tsx/esm/api';

register();
const api = await import('../index.ts');

export const {
  EarshotClient,
  Turn,
  EarshotConnectionError,
  EarshotServerError,
  AudioFormatError,
  clipSource,
  fileSource,
  oggOpusSource,
  opusPacketMs,
  pcmStreamSource,
  FRAME_MS,
  settle,
  streamAudio,
  parseOggOpus,
} = api;
