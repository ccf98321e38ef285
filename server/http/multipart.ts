/**
 * multipart/form-data (RFC 7578) for an already size-limited body: what OpenAI's upload
 * endpoints receive. Small on purpose: named fields and files, no nested multiparts, no
 * transfer encodings (clients send binary parts as is).
 */
import { EarshotError } from '../../protocol/errors.js';

export interface FormPart {
  name: string;
  filename?: string;
  contentType?: string;
  data: Buffer;
}

const MAX_PARTS = 32;

function bad(message: string): EarshotError {
  return new EarshotError('bad_message', `multipart body: ${message}`);
}

function boundaryOf(contentType: string | undefined): string {
  if (!contentType?.toLowerCase().startsWith('multipart/form-data')) throw new EarshotError('bad_message', 'expected a multipart/form-data body');
  const match = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const boundary = match?.[1] ?? match?.[2];
  if (!boundary || boundary.length > 70) throw bad('missing or invalid boundary');
  return boundary;
}

function disposition(headers: string): { name: string; filename?: string } {
  const line = /^content-disposition:\s*form-data(.*)$/im.exec(headers)?.[1];
  const name = line && /;\s*name="([^"]*)"/i.exec(line)?.[1];
  if (!line || name === undefined || name === null) throw bad('a part has no form-data name');
  const filename = /;\s*filename="([^"]*)"/i.exec(line)?.[1];
  return filename === undefined ? { name } : { name, filename };
}

export function parseMultipart(body: Buffer, contentType: string | undefined): FormPart[] {
  const delimiter = Buffer.from(`--${boundaryOf(contentType)}`);
  const parts: FormPart[] = [];
  let at = body.indexOf(delimiter);
  if (at < 0) throw bad('boundary not found');
  for (;;) {
    at += delimiter.length;
    if (body.subarray(at, at + 2).toString('latin1') === '--') return parts;
    if (body.subarray(at, at + 2).toString('latin1') !== '\r\n') throw bad('malformed boundary line');
    const headersEnd = body.indexOf('\r\n\r\n', at + 2);
    if (headersEnd < 0) throw bad('unterminated part headers');
    const headers = body.subarray(at + 2, headersEnd).toString('utf8');
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), headersEnd + 4);
    if (next < 0) throw bad('missing closing boundary');
    if (parts.length === MAX_PARTS) throw bad(`more than ${MAX_PARTS} parts`);
    const contentType = /^content-type:\s*(.+)$/im.exec(headers)?.[1]?.trim();
    parts.push({ ...disposition(headers), ...(contentType ? { contentType } : {}), data: body.subarray(headersEnd + 4, next) });
    at = next + 2;
  }
}
