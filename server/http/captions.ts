/** Subtitle files from timed segments, as OpenAI's transcription `srt` and `vtt` formats give them. */

export interface TimedText {
  startMs: number;
  endMs: number;
  text: string;
}

function clock(ms: number, separator: ',' | '.'): string {
  const total = Math.max(0, Math.round(ms));
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  return `${pad(Math.floor(total / 3_600_000))}:${pad(Math.floor(total / 60_000) % 60)}:${pad(Math.floor(total / 1000) % 60)}${separator}${pad(total % 1000, 3)}`;
}

export function srt(segments: TimedText[]): string {
  return segments.map((s, i) => `${i + 1}\n${clock(s.startMs, ',')} --> ${clock(s.endMs, ',')}\n${s.text}\n\n`).join('');
}

export function vtt(segments: TimedText[]): string {
  return `WEBVTT\n\n${segments.map((s) => `${clock(s.startMs, '.')} --> ${clock(s.endMs, '.')}\n${s.text}\n\n`).join('')}`;
}
