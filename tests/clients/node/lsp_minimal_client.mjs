// A client that declares as little as Vim's ALE and YouCompleteMe do:
// plaintext only, no workspace/applyEdit, no documentChanges, no code-action
// resolve, a one-character range for a bare cursor, string command arguments.
// Each of these used to get markdown, a versioned edit, an applyEdit request
// it never answers, or a refusal.

import assert from 'node:assert/strict';
import {
  CodeActionRequest,
  CodeActionResolveRequest,
  CompletionRequest,
  ExecuteCommandRequest,
  HoverRequest,
} from 'vscode-languageserver-protocol/node';
import { run, scriptedOptions, startProvider, startServer, waitFor } from './harness.mjs';

const DOC_REPLY =
  '```rust\n/// Euclidean distance to `other`.\npub fn distance(&self, other: &Point) -> f64 {\n' +
  '    ((self.x - other.x).powi(2) + (self.y - other.y).powi(2)).sqrt()\n}\n```\n';
const script = [
  { text: 'A point in the plane.' },
  { text: 'let d = a.distance(&b);' },
  { text: DOC_REPLY },
];

let provider;
let server;
let uri;

await run('lsp_minimal_client', [
  [
    'start',
    async (cleanups) => {
      provider = await startProvider(script);
      cleanups.push(() => provider.stop());
      server = await startServer({
        initializationOptions: scriptedOptions(provider.url, { lsp: { completion: { debounceMs: 0 } } }),
        capabilities: {
          window: { workDoneProgress: false },
          workspace: { applyEdit: false, didChangeWatchedFiles: { dynamicRegistration: true } },
          textDocument: {
            hover: { contentFormat: ['plaintext'] },
            completion: { completionItem: { documentationFormat: ['plaintext'], snippetSupport: false } },
            codeAction: { codeActionLiteralSupport: { codeActionKind: { valueSet: ['quickfix', 'refactor'] } } },
          },
        },
      });
      cleanups.push(() => server.stop());
      server.open('src/geometry.rs');
      uri = server.uri('src/geometry.rs');
    },
  ],
  [
    'file watchers are registered without brace globs',
    async () => {
      const registration = await waitFor(
        () => server.registrations.find((r) => r.method === 'workspace/didChangeWatchedFiles'),
        'the file-watcher registration',
      );
      const globs = registration.registerOptions.watchers.map((w) => w.globPattern);
      assert.deepEqual(globs, ['**/*.rs', '**/*.py', '**/*.pyi']);
    },
  ],
  [
    'hover is plain text',
    async () => {
      let hover = null;
      // The index is built in the background; ask until the symbol is known.
      for (let attempt = 0; attempt < 100 && !hover; attempt++) {
        hover = await server.request(HoverRequest.type, { textDocument: { uri }, position: { line: 12, character: 12 } });
        if (!hover) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(hover, 'no hover');
      assert.equal(hover.contents.kind, 'plaintext');
      assert.match(hover.contents.value, /pub fn distance/);
      assert.doesNotMatch(hover.contents.value, /```|\*method\*|`/);
    },
  ],
  [
    'a one-character range is a cursor: no refactor selection',
    async () => {
      const actions = await server.request(CodeActionRequest.type, {
        textDocument: { uri },
        range: { start: { line: 13, character: 10 }, end: { line: 13, character: 11 } },
        context: { diagnostics: [] },
      });
      const titles = actions.map((a) => a.title);
      assert.ok(titles.includes('Sextant: add doc comment to `distance`'), titles.join(', '));
      assert.ok(!titles.includes('Sextant: refactor selection'), titles.join(', '));
      // Without resolve support the action is a command; without applyEdit it
      // fails at once with a reason instead of waiting for a reply that never comes.
      const doc = actions.find((a) => a.title === 'Sextant: add doc comment to `distance`');
      assert.equal(doc.command.command, 'sextant.codeAction');
      await assert.rejects(server.request(ExecuteCommandRequest.type, doc.command), /cannot apply workspace edits/);
    },
  ],
  [
    'string command arguments are accepted',
    async () => {
      const answer = await server.request(ExecuteCommandRequest.type, { command: 'sextant.chat', arguments: ['What is a Point?'] });
      assert.match(answer, /A point in the plane\./);
      assert.match(JSON.stringify(provider.requests().at(-1).body), /What is a Point\?/);
    },
  ],
  [
    'completion documentation is plain text',
    async () => {
      const list = await server.request(CompletionRequest.type, { textDocument: { uri }, position: { line: 16, character: 0 } });
      const items = Array.isArray(list) ? list : (list?.items ?? []);
      assert.ok(items.length > 0, 'no completion item');
      assert.equal(items[0].documentation.kind, 'plaintext');
      assert.doesNotMatch(items[0].documentation.value, /```/);
    },
  ],
  [
    'without documentChanges a resolved edit is a plain changes map',
    async () => {
      await server.stop();
      server = await startServer({
        initializationOptions: scriptedOptions(provider.url),
        capabilities: {
          workspace: { applyEdit: true },
          textDocument: { codeAction: { resolveSupport: { properties: ['edit'] }, codeActionLiteralSupport: { codeActionKind: { valueSet: ['refactor'] } } } },
        },
      });
      server.open('src/geometry.rs');
      const actions = await server.request(CodeActionRequest.type, {
        textDocument: { uri: server.uri('src/geometry.rs') },
        range: { start: { line: 13, character: 10 }, end: { line: 13, character: 10 } },
        context: { diagnostics: [] },
      });
      const doc = actions.find((a) => a.title === 'Sextant: add doc comment to `distance`');
      const resolved = await server.request(CodeActionResolveRequest.type, doc);
      assert.equal(resolved.edit.documentChanges, undefined);
      const [edit] = resolved.edit.changes[server.uri('src/geometry.rs')];
      assert.match(edit.newText, /\/\/\/ Euclidean distance to `other`\./);
    },
  ],
]);
