import { Writable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import { createProgress, formatBytes, formatRate, progressFields, showsProgress } from '../../../cmd/cli/progress.js';

/** A stderr stand-in that records what is written; `isTTY` as a terminal or a pipe would say. */
function terminal(isTTY: boolean): Writable & { isTTY: boolean; columns: number; text(): string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return Object.assign(stream, { isTTY, columns: 120, text: () => chunks.join('') });
}

describe('the progress bar', () => {
  it('shows only on a terminal, and neither with --json nor with --quiet', () => {
    expect(showsProgress({ isTTY: true, json: false, quiet: false })).toBe(true);
    expect(showsProgress({ isTTY: false, json: false, quiet: false })).toBe(false);
    expect(showsProgress({ isTTY: true, json: true, quiet: false })).toBe(false);
    expect(showsProgress({ isTTY: true, json: false, quiet: true })).toBe(false);
  });

  it('writes sizes in binary units and rates per second', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(200 * 1024 * 1024)).toBe('200 MiB');
    expect(formatBytes(3 * 1024 ** 3)).toBe('3.0 GiB');
    expect(formatRate(10 * 1024 * 1024, 2000)).toBe('5.0 MiB/s');
    expect(formatRate(0, 1000)).toBe('-');
    expect(formatRate(100, 0)).toBe('-');
  });

  it('counts the rate of a resumed transfer from where it resumed', () => {
    expect(progressFields(3 * 1024 * 1024, 4 * 1024 * 1024, 2 * 1024 * 1024, 1000)).toEqual({ done: '3.0 MiB', size: '4.0 MiB', speed: '1.0 MiB/s' });
    expect(progressFields(10, undefined, 0, 1000).size).toBe('?');
  });

  it('renders bytes, percentage, rate and ETA on a terminal', () => {
    const stderr = terminal(true);
    let now = 0;
    const bar = createProgress({ show: true, label: 'big/b1', total: 200 * 1024 * 1024, stream: stderr, now: () => now });
    now = 4000;
    bar.update(100 * 1024 * 1024);
    bar.stop();
    expect(stderr.text()).toMatch(/big\/b1 \[.*\] 50% \| 100 MiB\/200 MiB \| 25\.0 MiB\/s \| ETA /);
  });

  it('writes nothing when not shown', () => {
    const stderr = terminal(true);
    const bar = createProgress({ show: false, label: 'x', total: 10, stream: stderr });
    bar.update(5);
    bar.stop();
    expect(stderr.text()).toBe('');
  });
});
