/** The worker.py protocol (see its docstring); what the worker sends is validated here. */
import { z } from 'zod';

const Usage = z.object({
  promptTokens: z.number().int().min(0),
  completionTokens: z.number().int().min(0),
  audioTokens: z.number().int().min(0),
});

const Bos = { bos: z.number().int().min(0), bosFirst: z.boolean() };

/** What a one-word prompt looks like to the model, checked by the worker once it loaded. */
export const Probe = z.object({
  textOnly: z.object(Bos),
  withAudio: z.union([z.object({ ...Bos, audioTokensPerSecond: z.number().int().min(0) }), z.object({ error: z.string() })]).optional(),
});
export type Probe = z.infer<typeof Probe>;

export const Loading = z.object({
  stage: z.enum(['download', 'load']),
  percent: z.number().min(0).max(100).optional(),
  doneBytes: z.number().int().min(0).optional(),
  totalBytes: z.number().int().min(0).optional(),
  doneFiles: z.number().int().min(0).optional(),
  totalFiles: z.number().int().min(0).optional(),
});
export type Loading = z.infer<typeof Loading>;

export const WorkerMessage = z.discriminatedUnion('type', [
  Loading.extend({ type: z.literal('loading') }),
  z.object({
    type: z.literal('ready'),
    model: z.string(),
    capabilities: z.object({ maxBatch: z.number().int().min(1), audio: z.boolean(), maxAudioMs: z.number().int().min(0), probe: Probe.optional() }),
  }),
  z.object({ type: z.literal('delta'), turnId: z.string(), text: z.string() }),
  z.object({ type: z.literal('done'), turnId: z.string(), usage: Usage, finish: z.enum(['stop', 'length', 'cancelled']) }),
  z.object({ type: z.literal('error'), turnId: z.string().optional(), code: z.string(), message: z.string() }),
  z.object({ type: z.literal('pong'), peakMemoryBytes: z.number().int().min(0).optional() }),
]);
export type WorkerMessage = z.infer<typeof WorkerMessage>;

export type WirePart = { type: 'text'; text: string } | { type: 'audio'; pcm: Buffer };
export interface WireTurn {
  turnId: string;
  messages: { role: string; parts: WirePart[] }[];
  params: { maxTokens: number; temperature: number; topP?: number; stop?: string[] };
}

export type PoolMessage =
  | { type: 'load'; model: string; maxBatch?: number }
  | { type: 'run'; batchId: number; turns: WireTurn[] }
  | { type: 'cancel'; turnId: string }
  | { type: 'ping' }
  | { type: 'shutdown' };
