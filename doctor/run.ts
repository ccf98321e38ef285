/**
 * `npm run doctor [-- --report file.md] [--python .venv/bin/python] [--mlx-model id]`: checks on
 * this machine that Gemma-4 on MLX works as Earshot needs it (doctor/checks.ts says what is
 * checked) and writes a report to paste into an issue. Same flags and EARSHOT_* variables as
 * `npm start`. Exit code 0: all passed; 1: a check failed; 2: nothing could be checked (no MLX).
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, parseConfig } from '../server/config.js';
import { createLogger } from '../server/observability/log.js';
import { exitCode, renderReport, runDoctor } from './checks.js';

const argv = process.argv.slice(2);
const at = argv.indexOf('--report');
const reportPath = resolve(at >= 0 ? argv[at + 1] ?? '' : 'earshot-doctor-report.md');
if (at >= 0) argv.splice(at, 2);
let config;
try {
  config = parseConfig(argv, process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`doctor: ${err.message}\n`);
  process.exit(2);
}
const report = await runDoctor({
  python: config.python,
  model: config.mlxModel,
  hangTimeoutMs: config.mlxHangTimeoutMs,
  loadStallMs: config.mlxLoadStallMs,
  logger: createLogger(config.logLevel),
});
const text = renderReport(report);
writeFileSync(reportPath, text);
process.stdout.write(`${text}\nreport written to ${reportPath}\n`);
process.exit(exitCode(report));
