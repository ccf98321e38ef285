/** `npm start`: parse config, start, drain on SIGTERM/SIGINT. */
import { ConfigError, helpText, parseConfig } from './config.js';
import { startServer } from './app.js';

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${helpText()}\n`);
    return;
  }
  let config;
  try {
    config = parseConfig(argv, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`earshot: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const server = await startServer(config);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    server.ctx.logger.info({ signal, deadlineMs: config.drainTimeoutMs }, 'draining');
    server.close(config.drainTimeoutMs).then(
      () => process.exit(0),
      (err: unknown) => {
        server.ctx.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // The server listened while the model loaded; if it never can, say why and exit.
  server.engineReady.catch(async (err: unknown) => {
    process.stderr.write(`earshot: the model engine could not start: ${(err as Error).message}\n`);
    await server.close(0).catch(() => undefined);
    process.exit(1);
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`earshot: failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
