/**
 * The transfer progress bar: bytes, rate and ETA on stderr, only for a person watching (stderr a
 * TTY, neither `--json` nor `--quiet`), so scripts and logs never get control characters.
 */
import { SingleBar } from 'cli-progress';

/** Whether a bar is shown. */
export function showsProgress(o: { isTTY: boolean; json: boolean; quiet: boolean }): boolean {
  return o.isTTY && !o.json && !o.quiet;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `1536` → `1.5 KiB`: binary units, three significant digits at most. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${UNITS[unit]!}`;
}

/** The rate of `bytes` moved in `elapsedMs`, e.g. `12.0 MiB/s`; `-` before there is anything to measure. */
export function formatRate(bytes: number, elapsedMs: number): string {
  if (elapsedMs <= 0 || bytes <= 0) return '-';
  return `${formatBytes(Math.round((bytes * 1000) / elapsedMs))}/s`;
}

/** What the bar shows besides itself, from the bytes of this run (a resumed transfer starts at `startAt`). */
export function progressFields(value: number, total: number | undefined, startAt: number, elapsedMs: number): { done: string; size: string; speed: string } {
  return { done: formatBytes(value), size: total === undefined ? '?' : formatBytes(total), speed: formatRate(value - startAt, elapsedMs) };
}

/** A progress display: `update` as bytes move, `stop` at the end (or on failure). */
export interface Progress {
  update(bytes: number): void;
  stop(): void;
}

const NO_PROGRESS: Progress = { update: () => undefined, stop: () => undefined };

/**
 * A bar for `total` bytes (undefined: unknown, e.g. stdin), starting at `startAt` (a resumed
 * transfer); a no-op unless `show`.
 */
export function createProgress(o: { show: boolean; label: string; total: number | undefined; startAt?: number; stream?: NodeJS.WritableStream; now?: () => number }): Progress {
  if (!o.show) return NO_PROGRESS;
  const now = o.now ?? Date.now;
  const startAt = o.startAt ?? 0;
  const began = now();
  const known = o.total !== undefined;
  const bar = new SingleBar({
    format: known ? '{label} [{bar}] {percentage}% | {done}/{size} | {speed} | ETA {eta_formatted}' : '{label} {done} | {speed}',
    stream: o.stream ?? process.stderr,
    hideCursor: true,
    barCompleteChar: '\u2588',
    barIncompleteChar: '\u2591',
    barsize: 30,
    etaBuffer: 50,
    fps: 5,
  });
  bar.start(o.total ?? 0, startAt, { label: o.label, ...progressFields(startAt, o.total, startAt, 0) });
  return {
    update(bytes) {
      bar.update(bytes, { label: o.label, ...progressFields(bytes, o.total, startAt, now() - began) });
    },
    stop() {
      bar.stop();
    },
  };
}
