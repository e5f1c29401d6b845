import type { CliIO } from '../../src/app/cli.js';

/** CLI I/O that captures stdout and stderr; `stop` resolves when the command should stop (serve). */
export function captureIO(cwd: string, stop?: Promise<string>): CliIO & { stdout: string; stderr: string } {
  const o = {
    stdout: '',
    stderr: '',
    out: (s: string) => void (o.stdout += s),
    err: (s: string) => void (o.stderr += s),
    env: {},
    cwd,
    stopSignal: () => stop ?? new Promise<string>(() => undefined),
    isTTY: false,
  };
  return o;
}
