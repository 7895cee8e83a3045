// Runs the bundled extension (dist/extension.js) in plain node with the fake
// `vscode` module, against the real sextant-lsp: activation starts the
// server, then the inline completion provider, the Ask command and the
// status bar are exercised. Writes what happened as JSON to
// $SEXTANT_TEST_RESULT (driven by tests/tests/vscode_extension.rs).
//
// Environment: SEXTANT_LSP (server binary), SEXTANT_TEST_WORKSPACE (a copy of
// the fixture workspace), SEXTANT_TEST_SETTINGS (JSON for
// sextant.serverSettings), SEXTANT_TEST_RESULT.
'use strict';

const fs = require('node:fs');
const Module = require('node:module');
const path = require('node:path');

const fake = require('./fake-vscode.cjs');

const originalLoad = Module._load;
Module._load = function load(request, parent, isMain) {
  if (request === 'vscode') {
    return fake.vscode;
  }
  return originalLoad.call(this, request, parent, isMain);
};

function requiredEnv(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`environment variable ${name} is not set`);
  }
  return value;
}

async function waitFor(what, predicate, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = predicate();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function scenario() {
  const extensionRoot = path.resolve(__dirname, '..', '..');
  const workspace = requiredEnv('SEXTANT_TEST_WORKSPACE');
  fake.configuration.set('sextant.serverPath', requiredEnv('SEXTANT_LSP'));
  fake.configuration.set('sextant.serverSettings', JSON.parse(requiredEnv('SEXTANT_TEST_SETTINGS')));
  fake.addWorkspaceFolder(workspace);

  // The user has typed `    let count = ` on a new line in perimeter().
  const file = path.join(workspace, 'src', 'geometry.rs');
  const original = fs.readFileSync(file, 'utf8');
  const marker = '    let mut total = 0.0;\n';
  const typed = '    let count = ';
  const text = original.replace(marker, `${marker}${typed}\n`);
  const line = text.slice(0, text.indexOf(typed)).split('\n').length - 1;
  const document = fake.openEditor(file, 'rust', text, line, typed.length);

  const extension = require(path.join(extensionRoot, 'dist', 'extension.js'));
  const subscriptions = [];
  await extension.activate({
    subscriptions,
    extensionPath: extensionRoot,
    asAbsolutePath: (relative) => path.join(extensionRoot, relative),
  });
  const result = { registeredInlineProviders: fake.providers.inline.length };

  const provider = fake.providers.inline[0];
  const items = await provider.provideInlineCompletionItems(
    document,
    new fake.vscode.Position(line, typed.length),
    { triggerKind: fake.vscode.InlineCompletionTriggerKind.Automatic },
    fake.newCancellationToken(),
  );
  result.inline = items.map((item) => ({
    insertText: item.insertText,
    range: item.range && [item.range.start.line, item.range.start.character, item.range.end.line, item.range.end.character],
  }));

  fake.answerNextInput('What does midpoint return?');
  await fake.vscode.commands.executeCommand('sextant.ask');
  result.chatDocument = await waitFor('the chat answer document', () => fake.recorded.openedDocuments[0]);

  await fake.vscode.commands.executeCommand('sextant.lastPrompt');
  result.lastPromptDocument = await waitFor('the last prompt document', () => fake.recorded.openedDocuments[1]);

  result.statusTexts = [...fake.recorded.statusTexts];
  result.errors = [...fake.recorded.errors];
  result.warnings = [...fake.recorded.warnings];
  await extension.deactivate();
  subscriptions.forEach((subscription) => subscription.dispose());
  return result;
}

scenario()
  .then((result) => {
    fs.writeFileSync(requiredEnv('SEXTANT_TEST_RESULT'), JSON.stringify({ ok: true, ...result }, null, 2));
    process.exit(0);
  })
  .catch((error) => {
    const failure = {
      ok: false,
      error: error && error.stack ? error.stack : String(error),
      errors: fake.recorded.errors,
      output: fake.recorded.output.join('\n'),
    };
    try {
      fs.writeFileSync(requiredEnv('SEXTANT_TEST_RESULT'), JSON.stringify(failure, null, 2));
    } finally {
      process.stderr.write(`${failure.error}\n`);
      process.exit(1);
    }
  });
