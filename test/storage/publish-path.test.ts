import { test } from 'node:test';
import fc from 'fast-check';
import { isBase64 } from '../../plugins/verdaccio-registry-storage/http/publish-guard';

// The former anchored check, kept here as the specification the faster search must agree with.
const ANCHORED = /^[A-Za-z0-9+/]*={0,2}$/;

test('18.2 publish guard: the base64 search gives the anchored check\'s verdict on any string', () => {
  const chars = fc.constantFrom(...'AZaz09+/=-_ !\n\u00e9'.split(''));
  fc.assert(
    fc.property(fc.string({ unit: chars, maxLength: 40 }), (text) => isBase64(text) === (text.length % 4 === 0 && ANCHORED.test(text))),
    { numRuns: 5000 },
  );
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => isBase64(Buffer.from(bytes).toString('base64'))), { numRuns: 500 });
});
