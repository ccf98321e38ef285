/** The worker.py protocol (see its docstring); what the worker sends is validated here. */
import { z } from 'zod';

const Usage = z.object({
  promptTokens: z.number().int().min(0),
  completionTokens: z.number().int().min(0),
  audioTokens: z.number().int().min(0),
});

export const WorkerMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('ready'),
    model: z.string(),
    capabilities: z.object({ maxBatch: z.number().int().min(1), audio: z.boolean(), maxAudioMs: z.number().int().min(0) }),
  }),
  z.object({ type: z.literal('delta'), turnId: z.string(), text: z.string() }),
  z.object({ type: z.literal('done'), turnId: z.string(), usage: Usage, finish: z.enum(['stop', 'length', 'cancelled']) }),
  z.object({ type: z.literal('error'), turnId: z.string().optional(), code: z.string(), message: z.string() }),
  z.object({ type: z.literal('pong') }),
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
