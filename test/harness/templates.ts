/** The files of templates/ filled in as their headers say: every {{NAME}} replaced, nothing left over. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

export function renderTemplate(file: string, values: Record<string, string>): string {
  const text = readFileSync(file, 'utf8').replace(/\{\{([A-Z_]+)\}\}/g, (_match, key: string) => {
    const value = values[key];
    assert.ok(value !== undefined, `no value for {{${key}}}`);
    return value;
  });
  assert.doesNotMatch(text, /\{\{|\}\}/);
  return text;
}
