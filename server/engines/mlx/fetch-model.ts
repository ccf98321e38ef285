/**
 * `npm run fetch-model [-- --mlx-model <id>] [--python <python>]`: downloads the model into the
 * Hugging Face cache ahead of the first start, with progress, so `npm start` loads at once.
 * The same flags and EARSHOT_* variables as `npm start` pick the model and the Python.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ConfigError, parseConfig } from '../../config.js';

const DOWNLOAD_SCRIPT = fileURLToPath(new URL('./download.py', import.meta.url));

let config;
try {
  config = parseConfig(process.argv.slice(2), process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`fetch-model: ${err.message}\n`);
  process.exit(2);
}
const child = spawn(config.python, [DOWNLOAD_SCRIPT, config.mlxModel], { stdio: 'inherit' });
child.on('error', (err) => {
  process.stderr.write(`fetch-model: cannot run ${config.python}: ${err.message}\n`);
  process.exit(1);
});
child.on('exit', (code) => process.exit(code ?? 1));
