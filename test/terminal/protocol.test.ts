import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configBytes, parseServerMessage } from '../../terminal/protocol';
import { serverConfig } from './fixtures';

test('config frames are validated and keep extra members; configBytes gives the 13 bytes', () => {
  const message = parseServerMessage(JSON.stringify({ type: 'config', ...serverConfig(), extra: 1 }));
  assert.equal(message.type, 'config');
  if (message.type !== 'config') return;
  assert.equal(message.config.extra, 1);
  assert.deepEqual(
    configBytes(message.config).map((b) => b.toString(16).padStart(2, '0')).join(' '),
    '01 0a 96 b6 ce 03 00 00 00 02 18 50 36',
  );
});

test('events, history, auth, output, error and unknown frames', () => {
  assert.equal(parseServerMessage('{"type":"event","kind":"publish","name":"a","version":"1.0.0","time":1}').type, 'event');
  const history = parseServerMessage('{"type":"history","events":[{"type":"event","kind":"login","user":"alice","time":2}]}');
  assert.equal(history.type === 'history' && history.events[0].user, 'alice');
  const auth = parseServerMessage('{"type":"auth","ok":false,"user":null,"admin":false,"error":"expired"}');
  assert.equal(auth.type === 'auth' && auth.auth.error, 'expired');
  const output = parseServerMessage('{"type":"output","ok":true,"text":"x","id":3}');
  assert.equal(output.type === 'output' && output.output.id, 3);
  assert.deepEqual(parseServerMessage('{"type":"error","error":"bad"}'), { type: 'error', error: 'bad' });
  assert.equal(parseServerMessage('{"type":"pong"}').type, 'pong');
  assert.equal(parseServerMessage('{"type":"future","text":"hi"}').type, 'other');
});

test('invalid frames throw a message that says what is wrong', () => {
  assert.throws(() => parseServerMessage('not json'), /not JSON/);
  assert.throws(() => parseServerMessage('[1]'), /not a JSON object/);
  assert.throws(() => parseServerMessage(JSON.stringify({ type: 'config', ...serverConfig(), hex: 'zz' })), /invalid config: hex/);
  assert.throws(() => parseServerMessage('{"type":"output","ok":"yes","text":"x"}'), /invalid output: ok/);
});
