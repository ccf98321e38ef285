/**
 * The input audio buffer and turn detection: the session's decoder and segmenter built from
 * the settings, input_audio_buffer.* events, and speech_started/stopped placed on the stream's
 * timeline with the id of the user item the utterance will become.
 */
import type { Config } from '../config.js';
import type { AudioHost } from '../offload/host.js';
import { localInput, offloadedInput } from '../session/audio-input.js';
import type { Session } from '../session/session.js';
import type { Confirmer } from '../vad/confirmer.js';
import type { FvadModule } from '../vad/fvad.js';
import { segmenterFor } from '../vad/judging.js';
import type { SegmentEvent } from '../vad/segmenter.js';
import { formatDecoder, formatSpec } from './audio.js';
import { vadJudging, type RealtimeSettings } from './config.js';
import { RealtimeError, type RealtimeWire } from './wire.js';

function emptyCommit(): RealtimeError {
  return new RealtimeError('protocol_order', 'input_audio_buffer_commit_empty', 'the input audio buffer is empty: nothing to commit');
}

export class RealtimeInput {
  private readonly session: Session;
  private readonly wire: RealtimeWire;
  private readonly fvad: FvadModule;
  private readonly config: Config;
  private readonly confirmer: Confirmer | undefined;
  /** The listening shard that owns the socket (--shards), where server VAD runs. */
  private readonly shard: AudioHost | undefined;
  /** The current input runs in the shard. */
  private offloaded = false;
  /** Stream time (ms) at which the current segmenter started: its timestamps are relative to it. */
  private segmenterOffsetMs = 0;
  /** Segmenter time at which the last utterance ended: the next prefix padding cannot reach before it. */
  private lastStopMs = 0;
  /** The user item announced by speech_started, added when the utterance ends. */
  private speechItemId: string | undefined;

  constructor(session: Session, wire: RealtimeWire, fvad: FvadModule, config: Config, confirmer: Confirmer | undefined, shard: AudioHost | undefined) {
    this.session = session;
    this.wire = wire;
    this.fvad = fvad;
    this.config = config;
    this.confirmer = confirmer;
    this.shard = shard;
  }

  /**
   * A fresh decoder and segmenter: on a format or turn detection change, and to drop buffered
   * speech. With turn detection on a listening shard's socket, they run in the shard (it places
   * their events on the stream's timeline); manual turns buffer here.
   */
  rebuild(settings: RealtimeSettings): void {
    const { vad, format } = settings;
    const { maxUtteranceMs } = this.config;
    const judging = vad && vadJudging(this.config, vad.threshold);
    const segmenterSettings = vad && { prefixPaddingMs: vad.prefixPaddingMs, silenceMs: vad.silenceMs, minSpeechMs: this.config.vadMinSpeechMs, maxUtteranceMs };
    const handleSegment = (event: SegmentEvent) => this.session.handleSegment(event);
    this.offloaded = Boolean(judging && this.shard);
    if (judging && segmenterSettings && this.shard) {
      const stream = this.shard.attach(
        { audio: formatSpec(format), judging, segmenter: segmenterSettings, framing: 'realtime' },
        { segment: handleSegment, error: (error) => this.wire.error(error, undefined) },
      );
      this.session.setAudioInput(offloadedInput(stream));
    } else {
      const segmenter = judging && segmenterSettings ? segmenterFor(this.fvad, judging, segmenterSettings, this.confirmer, handleSegment) : undefined;
      this.session.setAudioInput(localInput(formatDecoder(format), segmenter, maxUtteranceMs));
    }
    this.segmenterOffsetMs = Math.round(this.session.streamMs);
    this.lastStopMs = 0;
    this.speechItemId = undefined;
  }

  append(audio: string): void {
    this.session.pushAudio(Buffer.from(audio, 'base64'));
  }

  /** `eventId`: the commit's, for the error when the shard finds nothing to commit (here it throws at once). */
  commit(eventId: string | undefined): void {
    const offloaded = this.offloaded;
    const committed = this.session.commit((heard) => {
      if (offloaded && !heard) this.wire.error(emptyCommit(), eventId);
    });
    if (!committed) throw emptyCommit();
  }

  clear(settings: RealtimeSettings): void {
    this.rebuild(settings);
    this.wire.send({ type: 'input_audio_buffer.cleared' });
  }

  /** `prefixPaddingMs`: how far before the detected start the utterance's audio reaches. */
  speechStarted(atMs: number, prefixPaddingMs: number): void {
    this.speechItemId = this.wire.newId('item');
    const startMs = Math.max(this.lastStopMs, atMs - prefixPaddingMs);
    this.wire.send({ type: 'input_audio_buffer.speech_started', audio_start_ms: this.segmenterOffsetMs + startMs, item_id: this.speechItemId });
  }

  speechStopped(atMs: number): void {
    this.lastStopMs = atMs;
    this.wire.send({ type: 'input_audio_buffer.speech_stopped', audio_end_ms: this.segmenterOffsetMs + atMs, item_id: this.speechItemId ?? this.wire.newId('item') });
  }

  /** The id for the utterance that just ended: the one speech_started announced, or a new one (manual commit). */
  takeItemId(): string {
    const id = this.speechItemId ?? this.wire.newId('item');
    this.speechItemId = undefined;
    return id;
  }
}
