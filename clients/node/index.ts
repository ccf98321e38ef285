/** Public API of the Earshot Node client (package.json "exports": "./client"). */
export { EarshotClient, type ClientEvents, type ConnectionState, type EarshotClientOptions, type ReadyMessage } from './client.js';
export { Turn, type TurnInfo, type TurnResult } from './turn.js';
export { EarshotConnectionError, EarshotServerError } from './errors.js';
export { AudioFormatError, clipSource, fileSource, oggOpusSource, opusPacketMs, pcmStreamSource, FRAME_MS, type AudioPacket, type AudioSource } from './audio.js';
export { settle, streamAudio, type StreamOptions } from './stream.js';
export { parseOggOpus, type OggOpus, type OpusHead } from './ogg.js';
export type { FinishReason, GenerationParams, ServerMessage, SessionLimits, Usage, VadSettings } from '../../protocol/native.js';
