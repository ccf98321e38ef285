/** The transports a test runs over; apart from helpers/server.ts so that a test of child processes need not load the server itself. */
export const TRANSPORTS = ['uws', 'ws'] as const;
