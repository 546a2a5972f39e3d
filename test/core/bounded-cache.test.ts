/** The core's bounded memos (plugins/registry-core/bounded-cache.ts): pure logic, property-tested. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ClearingMemo } from '../../plugins/registry-core/bounded-cache';

test('ClearingMemo never holds more than its bound, and answers what was last set since it started over', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.tuple(fc.integer({ min: 0, max: 12 }), fc.integer())), (max, writes) => {
      const memo = new ClearingMemo<number, number>(max);
      const model = new Map<number, number>();
      for (const [key, value] of writes) {
        if (model.size >= max) model.clear();
        model.set(key, value);
        memo.set(key, value);
        assert.ok(memo.size <= max);
        assert.equal(memo.size, model.size);
        for (let probe = 0; probe <= 12; probe++) assert.equal(memo.get(probe), model.get(probe));
      }
    }),
  );
});

test('ClearingMemo refuses a bound that is not a positive integer', () => {
  for (const bad of [0, -1, 1.5, Number.NaN]) assert.throws(() => new ClearingMemo(bad), RangeError);
});
