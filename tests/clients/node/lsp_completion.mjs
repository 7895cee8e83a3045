// Inline completion against the scripted provider: prompt with repo-map
// context, post-processing, cache and type-ahead, $/cancelRequest,
// superseded requests, the textDocument/completion fallback, provider
// garbage, and sextant.showLastPrompt.

import assert from 'node:assert/strict';
import {
  CancellationTokenSource,
  CompletionRequest,
  DidChangeTextDocumentNotification,
  ExecuteCommandRequest,
  InlineCompletionRequest,
  InlineCompletionTriggerKind,
} from 'vscode-languageserver-protocol/node';
import { run, scriptedOptions, startProvider, startServer } from './harness.mjs';

const SUM = 'points.windows(2).map(|w| w[0].distance(&w[1])).sum()';
const script = [
  // 1: the first completion, with a closing brace and a next item to cut.
  { text: ['```rust\n', `${SUM}\n}\n\nfn unrelated() {}\n`, '```'] },
  // 2: answered too late: the client cancels first.
  { text: 'too late', delay_ms: 5000 },
  // 3: the request that supersedes another.
  { text: 'let scale = 2.0;\n' },
  // 4: the textDocument/completion fallback.
  { text: '/// Sums the distances.\n' },
  // 5: garbage where JSON should be.
  { fault: { garbage: '<html>oops' } },
];

let provider;
let server;
let uri;

const inline = (line, character, token) =>
  server.request(
    InlineCompletionRequest.type,
    {
      textDocument: { uri },
      position: { line, character },
      context: { triggerKind: InlineCompletionTriggerKind.Automatic },
    },
    token,
  );

const texts = (result) => (result?.items ?? result ?? []).map((item) => item.insertText);

await run('lsp_completion', [
  [
    'start the scripted provider and the server',
    async (cleanups) => {
      provider = await startProvider(script);
      cleanups.push(() => provider.stop());
      server = await startServer({
        initializationOptions: scriptedOptions(provider.url, { lsp: { completion: { debounceMs: 300 } } }),
      });
      cleanups.push(() => server.stop());
      await server.indexed();
      server.open('src/main.rs');
      uri = server.uri('src/main.rs');
    },
  ],
  [
    'completion is post-processed and the prompt carried repo-map context',
    async () => {
      const result = await inline(12, 4);
      assert.deepEqual(texts(result), [SUM]);
      assert.deepEqual(result.items[0].range, { start: { line: 12, character: 4 }, end: { line: 12, character: 4 } });
      const requests = provider.requests();
      assert.equal(requests.length, 1);
      const body = JSON.stringify(requests[0].body);
      assert.match(body, /Context file `src\/geometry.rs`/);
      assert.match(body, /pub fn distance\(&self, other: &Point\) -> f64/);
      assert.match(body, /src\/main.rs/);
      assert.match(body, /fn total_distance/);
    },
  ],
  [
    'the same prompt is served from the cache',
    async () => {
      assert.deepEqual(texts(await inline(12, 4)), [SUM]);
      assert.equal(provider.requests().length, 1);
    },
  ],
  [
    'type-ahead reuses the cached completion',
    async () => {
      server.connection.sendNotification(DidChangeTextDocumentNotification.type, {
        textDocument: { uri, version: 2 },
        contentChanges: [{ range: { start: { line: 12, character: 4 }, end: { line: 12, character: 4 } }, text: 'points.win' }],
      });
      assert.deepEqual(texts(await inline(12, 14)), [SUM.slice('points.win'.length)]);
      assert.equal(provider.requests().length, 1);
    },
  ],
  [
    '$/cancelRequest cancels an in-flight completion',
    async () => {
      const source = new CancellationTokenSource();
      const pending = inline(8, 20, source.token);
      // Wait until the request reached the provider, then cancel.
      const deadline = Date.now() + 30_000;
      while (provider.requests().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(provider.requests().length, 2, 'the request reached the provider');
      source.cancel();
      await assert.rejects(pending, (error) => error.code === -32800);
    },
  ],
  [
    'a newer request for the same document supersedes the older one',
    async () => {
      const older = inline(5, 4);
      const newer = inline(6, 4);
      await assert.rejects(older, (error) => error.code === -32802 && /superseded/.test(error.message));
      // Put before the code on line 6, the item ends with a newline and that
      // line's indentation, so the code keeps both (issue 13 point 6).
      assert.deepEqual(texts(await newer), ['let scale = 2.0;\n    ']);
      assert.equal(provider.requests().length, 3);
    },
  ],
  [
    'textDocument/completion offers the suggestion as an item',
    async () => {
      const items = await server.request(CompletionRequest.type, { textDocument: { uri }, position: { line: 10, character: 0 } });
      assert.equal(items.length, 1);
      assert.equal(items[0].label, '/// Sums the distances.');
      assert.deepEqual(items[0].textEdit, {
        range: { start: { line: 10, character: 0 }, end: { line: 10, character: 0 } },
        newText: '/// Sums the distances.',
      });
    },
  ],
  [
    'provider garbage becomes a clear error',
    async () => {
      await assert.rejects(inline(3, 0), (error) => error.code === -32803 && /completion failed/.test(error.message));
    },
  ],
  [
    'sextant.showLastPrompt explains what went into the prompt',
    async () => {
      const markdown = await server.request(ExecuteCommandRequest.type, { command: 'sextant.showLastPrompt', arguments: [] });
      assert.match(markdown, /Context: src\/geometry.rs/);
      assert.match(markdown, /Why chosen/);
      assert.match(markdown, /\| prefix \| \d+ \|/);
      assert.match(markdown, /\*\*Outcome:\*\* error: /);
      assert.ok(server.shownDocuments.length >= 1, 'the report was shown with window/showDocument');
    },
  ],
]);
