/** Messages between the Flite engine and its synthesis processes. */
export interface SynthesisJob {
  id: number;
  text: string;
  voice: string;
  /** 1 = Flite's natural rate; 2 = twice as fast. */
  speed: number;
}

export type SynthesisResult = { id: number; pcm: Int16Array } | { id: number; error: string };
