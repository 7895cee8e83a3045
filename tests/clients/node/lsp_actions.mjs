// Code actions (list + resolve into a validated WorkspaceEdit, rejected
// edits), sextant.chat streaming with work-done progress and showDocument,
// a configuration change (results as messages, AI hover), and the
// sextant.codeAction fallback with workspace/applyEdit.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  CodeActionRequest,
  CodeActionResolveRequest,
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  HoverRequest,
} from 'vscode-languageserver-protocol/node';
import { run, scriptedOptions, startProvider, startServer, waitFor } from './harness.mjs';

const DOC_REPLY =
  'Here it is:\n```rust\n/// Euclidean distance to `other`.\npub fn distance(&self, other: &Point) -> f64 {\n' +
  '    ((self.x - other.x).powi(2) + (self.y - other.y).powi(2)).sqrt()\n}\n```\n';
const script = [
  { text: DOC_REPLY },
  { text: '```rust\npub fn new(x: f64, y: f64 -> Self {\n```' },
  { text: ['Points ', 'are ', '2D.'], chunk_delay_ms: 30 },
  { text: 'It builds two points.' },
  { text: 'A 2D point type.' },
  { text: ['The workspace ', 'has two files.'] },
  { text: '```rust\npub fn new(x: f64, y: f64) -> Self {\n    Self { x, y }\n}\n```' },
];

let provider;
let server;
let uri;

const codeActions = (range, diagnostics = []) =>
  server.request(CodeActionRequest.type, { textDocument: { uri }, range, context: { diagnostics } });

await run('lsp_actions', [
  [
    'start',
    async (cleanups) => {
      provider = await startProvider(script);
      cleanups.push(() => provider.stop());
      server = await startServer({ initializationOptions: scriptedOptions(provider.url) });
      cleanups.push(() => server.stop());
      await server.indexed();
      server.open('src/geometry.rs');
      uri = server.uri('src/geometry.rs');
    },
  ],
  [
    'code actions are listed without calling the model',
    async () => {
      const diagnostic = { range: { start: { line: 13, character: 8 }, end: { line: 13, character: 12 } }, message: 'needless parentheses' };
      const actions = await codeActions({ start: { line: 13, character: 10 }, end: { line: 13, character: 10 } }, [diagnostic]);
      const titles = actions.map((a) => a.title);
      assert.ok(titles.includes('Sextant: explain this code'), titles.join(', '));
      assert.ok(titles.includes('Sextant: fix “needless parentheses”'), titles.join(', '));
      assert.ok(titles.includes('Sextant: add doc comment to `distance`'), titles.join(', '));
      assert.ok(titles.includes('Sextant: write tests for `distance`'), titles.join(', '));
      assert.ok(!titles.includes('Sextant: refactor selection'), 'no selection, no refactor');
      const fix = actions.find((a) => a.kind === 'quickfix');
      assert.deepEqual(fix.diagnostics, [diagnostic]);
      assert.ok(actions.every((a) => a.edit === undefined), 'edits are made in resolve');
      assert.equal(provider.requests().length, 0);
    },
  ],
  [
    'resolve produces a valid WorkspaceEdit',
    async () => {
      const actions = await codeActions({ start: { line: 13, character: 10 }, end: { line: 13, character: 10 } });
      const doc = actions.find((a) => a.title === 'Sextant: add doc comment to `distance`');
      const resolved = await server.request(CodeActionResolveRequest.type, doc);
      const [change] = resolved.edit.documentChanges;
      assert.equal(change.textDocument.uri, uri);
      assert.equal(change.textDocument.version, 1);
      assert.equal(change.edits.length, 1);
      const [edit] = change.edits;
      assert.deepEqual(edit.range, { start: { line: 12, character: 0 }, end: { line: 15, character: 0 } });
      assert.equal(
        edit.newText,
        '    /// Euclidean distance to `other`.\n    pub fn distance(&self, other: &Point) -> f64 {\n' +
          '        ((self.x - other.x).powi(2) + (self.y - other.y).powi(2)).sqrt()\n    }\n',
      );
      const prompt = JSON.stringify(provider.requests()[0].body);
      assert.match(prompt, /doc comment/);
      assert.match(prompt, /pub fn distance/);
    },
  ],
  [
    'an edit that adds syntax errors is refused',
    async () => {
      const actions = await codeActions({ start: { line: 8, character: 0 }, end: { line: 11, character: 0 } });
      const refactor = actions.find((a) => a.title === 'Sextant: refactor selection');
      assert.ok(refactor, 'refactor is offered for a selection');
      await assert.rejects(server.request(CodeActionResolveRequest.type, refactor), /syntax errors from 0 to \d+/);
    },
  ],
  [
    'sextant.chat streams into progress and shows a markdown document',
    async () => {
      const token = 'chat-progress';
      server.watchProgress(token);
      const answer = await server.request(ExecuteCommandRequest.type, {
        command: 'sextant.chat',
        arguments: [{ prompt: 'What is a Point?', uri, range: { start: { line: 0, character: 0 }, end: { line: 5, character: 0 } } }],
        workDoneToken: token,
      });
      assert.equal(answer, 'Points are 2D.');
      const values = server.progress.filter((p) => p.token === token).map((p) => p.value);
      assert.equal(values[0].kind, 'begin');
      assert.equal(values.at(-1).kind, 'end');
      const reports = values.filter((v) => v.kind === 'report').map((v) => v.message);
      assert.ok(reports.length >= 2, `streamed reports: ${JSON.stringify(reports)}`);
      assert.equal(reports.at(-1), 'Points are 2D.');
      assert.ok(reports.some((r) => r.length < 'Points are 2D.'.length), 'partial text was reported');
      const shown = server.shownDocuments.at(-1);
      assert.match(shown.uri, /\/\.sextant\/sextant-chat-\d+\.md$/);
      const file = fs.readFileSync(new URL(shown.uri), 'utf8');
      assert.match(file, /Points are 2D\./);
      const request = JSON.stringify(provider.requests()[2].body);
      assert.match(request, /What is a Point\?/);
      assert.match(request, /A point in 2D space/);
    },
  ],
  [
    'configuration change: results as messages, AI hover on',
    async () => {
      server.connection.sendNotification(DidChangeConfigurationNotification.type, {
        settings: { sextant: { lsp: { results: 'message' }, hover: { ai: true } } },
      });
      const before = server.messages.length;
      const answer = await server.request(ExecuteCommandRequest.type, {
        command: 'sextant.explain',
        arguments: [{ uri, range: { start: { line: 8, character: 0 }, end: { line: 11, character: 0 } } }],
      });
      assert.equal(answer, 'It builds two points.');
      await waitFor(() => server.messages.length > before, 'a window/showMessage');
      assert.match(server.messages.at(-1).message, /It builds two points\./);
      const hover = await server.request(HoverRequest.type, { textDocument: { uri }, position: { line: 12, character: 12 } });
      assert.match(hover.contents.value, /pub fn distance/);
      assert.match(hover.contents.value, /\*\*AI:\*\* A 2D point type\./);
      // Cached per (symbol, content): no second model call.
      const requests = provider.requests().length;
      const again = await server.request(HoverRequest.type, { textDocument: { uri }, position: { line: 12, character: 12 } });
      assert.equal(again.contents.value, hover.contents.value);
      assert.equal(provider.requests().length, requests);
    },
  ],
  [
    'invalid settings are reported, not fatal',
    async () => {
      const before = server.messages.length;
      server.connection.sendNotification(DidChangeConfigurationNotification.type, { settings: { lsp: { completion: { debounceMs: 'soon' } } } });
      await waitFor(() => server.messages.length > before, 'an error message');
      assert.match(server.messages.at(-1).message, /invalid sextant settings/);
    },
  ],
  [
    'sextant.agent runs the core agent with progress',
    async () => {
      const token = 'agent-progress';
      server.watchProgress(token);
      const answer = await server.request(ExecuteCommandRequest.type, {
        command: 'sextant.agent',
        arguments: [{ task: 'Summarise the workspace.' }],
        workDoneToken: token,
      });
      assert.match(answer, /The workspace has two files\./);
      const values = server.progress.filter((p) => p.token === token).map((p) => p.value);
      assert.equal(values[0].kind, 'begin');
      assert.equal(values.at(-1).kind, 'end');
      assert.ok(values.some((v) => v.kind === 'report' && /The workspace/.test(v.message)));
      const request = JSON.stringify(provider.requests().at(-1).body);
      assert.match(request, /Summarise the workspace\./);
    },
  ],
  [
    'clients without resolve support apply the edit through sextant.codeAction',
    async () => {
      await server.stop();
      server = await startServer({ initializationOptions: scriptedOptions(provider.url), clientSupports: { resolve: false } });
      await server.indexed();
      server.open('src/geometry.rs');
      uri = server.uri('src/geometry.rs');
      const actions = await codeActions({ start: { line: 8, character: 0 }, end: { line: 11, character: 0 } });
      const refactor = actions.find((a) => a.title === 'Sextant: refactor selection');
      assert.equal(refactor.command.command, 'sextant.codeAction');
      const result = await server.request(ExecuteCommandRequest.type, refactor.command);
      assert.equal(result, 'edit applied');
      const [applied] = server.appliedEdits;
      const [edit] = applied.edit.documentChanges[0].edits;
      assert.equal(edit.newText, '    pub fn new(x: f64, y: f64) -> Self {\n        Self { x, y }\n    }\n');
    },
  ],
]);
