import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { SETTINGS, settingsToServerOptions } from '../src/settings';

test('unset settings are left to the server, except result display', () => {
  assert.deepEqual(settingsToServerOptions({}), { lsp: { results: 'none' } });
});

test('dotted keys become nested objects and client-only keys stay out', () => {
  const options = settingsToServerOptions({
    serverPath: '/opt/sextant-lsp',
    provider: 'openai',
    model: 'qwen2.5-coder',
    baseUrl: 'http://127.0.0.1:8080/v1',
    'completion.enabled': false,
    'completion.debounceMs': 20,
    'hover.ai': true,
    results: 'document',
  });
  assert.deepEqual(options, {
    lsp: { results: 'document', completion: { enabled: false, debounceMs: 20 } },
    provider: 'openai',
    model: 'qwen2.5-coder',
    baseUrl: 'http://127.0.0.1:8080/v1',
    hover: { ai: true },
  });
});

test('serverSettings merge deeply and specific settings win', () => {
  const options = settingsToServerOptions({
    serverSettings: { lsp: { completion: { timeoutMs: 5000, debounceMs: 1 } }, embedded: { modelPath: '/models/m.gguf' } },
    'completion.debounceMs': 40,
    model: '  ',
  });
  assert.deepEqual(options, {
    lsp: { results: 'none', completion: { timeoutMs: 5000, debounceMs: 40 } },
    embedded: { modelPath: '/models/m.gguf' },
  });
});

test('package.json declares exactly the mapped settings', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8'));
  const declared = Object.keys(manifest.contributes.configuration.properties).sort();
  const mapped = SETTINGS.map((setting) => `sextant.${setting.key}`).sort();
  assert.deepEqual(declared, mapped);
});
