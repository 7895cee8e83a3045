// Protocol basics: capabilities, position-encoding negotiation, incremental
// sync with UTF-16 positions, invalid positions, structural hover,
// watched-file updates, unknown methods.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  HoverRequest,
  DidChangeTextDocumentNotification,
  DidChangeWatchedFilesNotification,
  DidOpenTextDocumentNotification,
  FileChangeType,
} from 'vscode-languageserver-protocol/node';
import { run, startServer, waitFor } from './harness.mjs';

let server;

const hoverText = (hover) => hover?.contents?.value ?? '';

await run('lsp_protocol', [
  [
    'initialize advertises the features and negotiates UTF-8',
    async (cleanups) => {
      server = await startServer({ capabilities: { general: { positionEncodings: ['utf-8', 'utf-16'] } } });
      cleanups.push(() => server.stop());
      const caps = server.initialize.capabilities;
      assert.equal(caps.positionEncoding, 'utf-8');
      assert.deepEqual(caps.inlineCompletionProvider, {});
      assert.ok(caps.completionProvider, 'completionProvider');
      assert.equal(caps.hoverProvider, true);
      assert.equal(caps.codeActionProvider.resolveProvider, true);
      assert.equal(caps.textDocumentSync.change, 2, 'incremental sync');
      for (const command of ['sextant.chat', 'sextant.explain', 'sextant.agent', 'sextant.showLastPrompt']) {
        assert.ok(caps.executeCommandProvider.commands.includes(command), command);
      }
      assert.equal(server.initialize.serverInfo.name, 'sextant-lsp');
      await server.indexed();
      await waitFor(() => server.registrations.some((r) => r.method === 'workspace/didChangeWatchedFiles'), 'the file watcher registration');
    },
  ],
  [
    'UTF-8 columns are byte offsets',
    async () => {
      const uri = server.uri('src/bytes.rs');
      // "É" is 2 bytes: `Point` spans bytes 26..31 on line 0.
      server.connection.sendNotification(DidOpenTextDocumentNotification.type, {
        textDocument: { uri, languageId: 'rust', version: 1, text: 'const É: u8 = 0; fn f(p: Point) {}\n' },
      });
      const hover = await server.request(HoverRequest.type, { textDocument: { uri }, position: { line: 0, character: 27 } });
      assert.match(hoverText(hover), /pub struct Point/);
      assert.deepEqual(hover.range, { start: { line: 0, character: 26 }, end: { line: 0, character: 31 } });
      // Inside the two bytes of "É": rejected, not a panic.
      await assert.rejects(
        server.request(HoverRequest.type, { textDocument: { uri }, position: { line: 0, character: 7 } }),
        /inside a character/,
      );
    },
  ],
  [
    'default UTF-16, incremental edits with surrogate pairs, structural hover',
    async () => {
      await server.stop();
      server = await startServer();
      assert.equal(server.initialize.capabilities.positionEncoding, 'utf-16');
      await server.indexed();
      const text = server.open('src/main.rs');
      const uri = server.uri('src/main.rs');
      // Insert a comment with an emoji (2 UTF-16 units) before `let d`, then
      // edit after it using UTF-16 columns.
      server.connection.sendNotification(DidChangeTextDocumentNotification.type, {
        textDocument: { uri, version: 2 },
        contentChanges: [
          { range: { start: { line: 7, character: 4 }, end: { line: 7, character: 4 } }, text: '/*😀*/ ' },
          // `/*😀*/ ` is 7 UTF-16 units; replace the `d` of `let d` (col 4 + 7 + 4).
          { range: { start: { line: 7, character: 15 }, end: { line: 7, character: 16 } }, text: 'dist' },
        ],
      });
      const hover = await server.request(HoverRequest.type, {
        textDocument: { uri },
        position: { line: 7, character: 31 }, // inside `distance` after the edits
      });
      const markdown = hoverText(hover);
      assert.match(markdown, /pub fn distance\(&self, other: &Point\) -> f64/);
      assert.match(markdown, /src\/geometry\.rs:13/);
      assert.match(markdown, /\d+ references? in \d+ files?/);
      assert.deepEqual(hover.range, { start: { line: 7, character: 29 }, end: { line: 7, character: 37 } });
      assert.ok(text.includes('let d = origin.distance'));

      const pointHover = await server.request(HoverRequest.type, { textDocument: { uri }, position: { line: 2, character: 16 } });
      assert.match(hoverText(pointHover), /A point in 2D space/);
    },
  ],
  [
    'invalid positions get clear errors; past line end is clamped',
    async () => {
      const uri = server.uri('src/main.rs');
      await assert.rejects(
        server.request(HoverRequest.type, { textDocument: { uri }, position: { line: 999, character: 0 } }),
        /past the end of the document/,
      );
      await assert.rejects(
        server.request(HoverRequest.type, { textDocument: { uri }, position: { line: 7, character: 7 } }), // inside 😀
        /inside a character/,
      );
      // Column far past the end of `use geometry::Point;` clamps to the line end (`Point`).
      const clamped = await server.request(HoverRequest.type, { textDocument: { uri }, position: { line: 2, character: 10_000 } });
      assert.equal(clamped, null, 'the line end is after `;`, no identifier there');
    },
  ],
  [
    'watched-file changes update the repo map',
    async () => {
      fs.writeFileSync(path.join(server.root, 'src/extra.rs'), '/// Added on disk.\npub fn helper_from_disk() -> u8 { 7 }\n');
      server.connection.sendNotification(DidChangeWatchedFilesNotification.type, {
        changes: [{ uri: server.uri('src/extra.rs'), type: FileChangeType.Created }],
      });
      const uri = server.uri('src/user.rs');
      server.connection.sendNotification(DidOpenTextDocumentNotification.type, {
        textDocument: { uri, languageId: 'rust', version: 1, text: 'fn g() { helper_from_disk(); }\n' },
      });
      let markdown = '';
      for (let attempt = 0; attempt < 400 && !markdown.includes('helper_from_disk'); attempt++) {
        const result = await server.request(HoverRequest.type, { textDocument: { uri }, position: { line: 0, character: 12 } });
        markdown = hoverText(result);
        if (!markdown) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.match(markdown, /Added on disk/);
      fs.rmSync(path.join(server.root, 'src/extra.rs'));
      server.connection.sendNotification(DidChangeWatchedFilesNotification.type, {
        changes: [{ uri: server.uri('src/extra.rs'), type: FileChangeType.Deleted }],
      });
      let gone = false;
      for (let attempt = 0; attempt < 400 && !gone; attempt++) {
        const result = await server.request(HoverRequest.type, { textDocument: { uri }, position: { line: 0, character: 12 } });
        gone = result === null;
        if (!gone) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.ok(gone, 'the deleted definition is gone from the map');
    },
  ],
  [
    'unknown methods get MethodNotFound and the server keeps working',
    async () => {
      await assert.rejects(server.request('sextant/noSuchMethod', {}), (error) => error.code === -32601);
      const notOpen = await server.request(HoverRequest.type, { textDocument: { uri: 'file:///not/open.rs' }, position: { line: 0, character: 0 } });
      assert.equal(notOpen, null);
    },
  ],
]);
