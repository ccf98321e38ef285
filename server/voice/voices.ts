/**
 * Voice names: each engine's own, plus OpenAI's names, which clients built for OpenAI send
 * (alloy by default). An OpenAI name maps to a voice of the engine of a similar kind (by
 * gender where the engine says), so such clients speak instead of failing; an unknown name is
 * an error that lists what is available.
 */
import { EarshotError } from '../../protocol/errors.js';
import type { VoiceInfo } from './types.js';

/** OpenAI's voices (Realtime offers the first ten; speech and chat also fable, nova, onyx), by how they sound. */
export const OPENAI_VOICES: Readonly<Record<string, 'female' | 'male'>> = {
  alloy: 'female',
  ash: 'male',
  ballad: 'male',
  coral: 'female',
  echo: 'male',
  sage: 'female',
  shimmer: 'female',
  verse: 'male',
  marin: 'female',
  cedar: 'male',
  fable: 'male',
  nova: 'female',
  onyx: 'male',
};

export class VoiceBook {
  private readonly own: VoiceInfo[];
  private readonly mapped = new Map<string, string>();
  readonly defaultVoice: string;

  /** `defaultVoice`: the voice used when a client names none (the engine's first when unset). */
  constructor(engine: string, voices: VoiceInfo[], defaultVoice: string | undefined) {
    if (voices.length === 0) throw new EarshotError('voice_error', `voice stage (${engine}): the engine offers no voices`);
    this.own = voices;
    const fallback = defaultVoice ?? voices[0]!.id;
    if (!voices.some((v) => v.id === fallback))
      throw new EarshotError('bad_message', `--tts-voice '${fallback}' is not a voice of the ${engine} engine; available: ${voices.map((v) => v.id).join(', ')}`);
    this.defaultVoice = fallback;
    const byGender = (gender: string) => voices.filter((v) => v.gender === gender);
    const turns = new Map<string, number>();
    for (const [name, gender] of Object.entries(OPENAI_VOICES)) {
      if (voices.some((v) => v.id === name)) continue;
      const kind = byGender(gender);
      if (kind.length === 0) {
        this.mapped.set(name, fallback);
        continue;
      }
      // Spread names over voices of their kind, the default first when it is of that kind.
      const ordered = [...kind].sort((a, b) => Number(b.id === fallback) - Number(a.id === fallback));
      const turn = turns.get(gender) ?? 0;
      turns.set(gender, turn + 1);
      this.mapped.set(name, ordered[turn % ordered.length]!.id);
    }
  }

  /** Every name a client may send: the engine's voices, then OpenAI's. */
  names(): string[] {
    return [...this.own.map((v) => v.id), ...this.mapped.keys()];
  }

  /** The engine voice for a requested name (the default when none); `param` names the field in the error. */
  resolve(requested: string | undefined | null, param = 'voice'): string {
    if (requested == null || requested === '') return this.defaultVoice;
    if (this.own.some((v) => v.id === requested)) return requested;
    const mapped = this.mapped.get(requested.toLowerCase());
    if (mapped) return mapped;
    throw new EarshotError('bad_message', `voice '${requested}' is not available; voices: ${this.names().join(', ')}`, { param });
  }
}
