/** What the CSS pushed, waiting for the agent's polls (lib/transport/mqtt/pushed-items.ts). */
import { describe, expect, test } from '@jest/globals';
import { emptyMetaData } from '../../../lib/model/index.js';
import type { CssItem } from '../../../lib/sync/ess/css-link.js';
import { PushedItems } from '../../../lib/transport/mqtt/pushed-items.js';

const item = (type: string, objectID: string, instanceID = 1n): CssItem => ({ type, meta: { ...emptyMetaData(), objectType: 't', objectID, instanceID }, inline: null });
const names = (items: CssItem[]): string[] => items.map((i) => `${i.type}:${i.meta.objectID}:${i.meta.instanceID}`);

describe('the messages waiting for a poll', () => {
  test('come in arrival order, at most one per object per poll: a delete never shares a batch with the update before it', () => {
    const q = new PushedItems(100);
    q.push(item('update', 'a'));
    q.push(item('update', 'b'));
    q.push(item('delete', 'a'));
    q.push(item('update', 'a', 2n));
    q.push(item('update', 'c'));
    expect(names(q.take(500))).toEqual(['update:a:1', 'update:b:1', 'update:c:1']);
    expect(names(q.take(500))).toEqual(['delete:a:1']);
    expect(names(q.take(500))).toEqual(['update:a:2']);
    expect(q.size).toBe(0);
  });

  test('a repeat of a waiting message waits once; once handed out, it may come again', () => {
    const q = new PushedItems(100);
    expect(q.push(item('update', 'a'))).toBe('queued');
    expect(q.push(item('update', 'a'))).toBe('repeat');
    expect(q.push(item('update', 'a', 2n))).toBe('queued');
    expect(names(q.take(1))).toEqual(['update:a:1']);
    expect(q.push(item('update', 'a'))).toBe('queued');
  });

  test('a batch holds at most `max`; what is past it keeps its order, later items of its objects behind it', () => {
    const q = new PushedItems(100);
    for (const id of ['a', 'b', 'c']) q.push(item('update', id));
    q.push(item('delete', 'c'));
    expect(names(q.take(2))).toEqual(['update:a:1', 'update:b:1']);
    expect(names(q.take(2))).toEqual(['update:c:1']);
    expect(names(q.take(2))).toEqual(['delete:c:1']);
  });

  test('is bounded: past its limit a message is dropped, and the caller hears so', () => {
    const q = new PushedItems(2);
    q.push(item('update', 'a'));
    q.push(item('update', 'b'));
    expect(q.push(item('update', 'c'))).toBe('full');
    expect(q.size).toBe(2);
  });
});
