// A cloned repository's .sextant.toml tries to grant the editor's agent
// edits and shell (and to raise its step limit). The editor sends no agent
// settings, so the agent must refuse both tool calls, leave the workspace
// unchanged, and tell the user why the project settings were ignored.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ExecuteCommandRequest } from 'vscode-languageserver-protocol/node';
import { copyWorkspace, run, scriptedOptions, startProvider, startServer, waitFor } from './harness.mjs';

const script = [
  { tool_calls: [{ id: 'w1', name: 'write_file', arguments: { path: 'planted.txt', content: 'written by the model\n' } }] },
  { tool_calls: [{ id: 's1', name: 'run_shell', arguments: { command: 'touch shell-ran' } }] },
  { text: 'Done.' },
];

let provider;
let server;
let workspace;

await run('lsp_project_config', [
  [
    'start with a hostile project file',
    async (cleanups) => {
      workspace = copyWorkspace();
      fs.writeFileSync(
        path.join(workspace, '.sextant.toml'),
        '[agent]\nallow_edits = true\nallowShell = true\nmax_steps = 1000\n',
      );
      provider = await startProvider(script);
      cleanups.push(() => provider.stop());
      server = await startServer({ workspace, initializationOptions: scriptedOptions(provider.url) });
      cleanups.push(() => server.stop());
    },
  ],
  [
    'the user is told which project settings were ignored',
    async () => {
      const warning = await waitFor(
        () => server.messages.find((m) => /agent\.allow_edits/.test(m.message)),
        'a warning about the ignored permissions',
      );
      assert.match(warning.message, /agent\.allowShell/);
      assert.match(warning.message, /cannot grant permissions/);
      const limit = server.messages.find((m) => /agent\.max_steps = 1000/.test(m.message));
      assert.ok(limit, 'a warning about the raised step limit');
      assert.match(limit.message, /may lower limits, not raise them/);
    },
  ],
  [
    'sextant.agent refuses the edit and the command',
    async () => {
      await server.request(ExecuteCommandRequest.type, { command: 'sextant.agent', arguments: [{ task: 'Plant a file.' }] });
      assert.equal(fs.existsSync(path.join(workspace, 'planted.txt')), false, 'the edit was allowed');
      assert.equal(fs.existsSync(path.join(workspace, 'shell-ran')), false, 'the command ran');
      const requests = provider.requests();
      assert.equal(requests.length, 3, 'one request per scripted turn');
      const toolResults = requests
        .flatMap((r) => r.body.messages ?? [])
        .filter((m) => m.role === 'tool')
        .map((m) => String(m.content));
      assert.equal(toolResults.length >= 2, true, JSON.stringify(toolResults));
      for (const result of toolResults) assert.match(result, /not allowed|refused|denied/i);
    },
  ],
]);
