/** The key of an `Authorization: Bearer <key>` header, if there is one. */
export function bearerKey(headers: Record<string, string>): string | undefined {
  const header = headers['authorization'];
  return header?.toLowerCase().startsWith('bearer ') ? header.slice(7).trim() : undefined;
}
