// Runs the packaged VS Code extension in code-server (VS Code's workbench
// served to a browser) and drives it through Chromium like a user: waits for
// the extension's status bar item; hovers a function; applies a code action
// from the Ctrl+. menu; types in a Rust file until the inline completion shows
// as ghost text, accepts it with Tab and saves; asks a question through the
// command palette and reads the answer document; runs an agent task that
// edits the open file and checks the editor shows the edit. Everything it sees goes to
// $SEXTANT_TEST_RESULT as JSON; the cargo test
// (tests/tests/vscode_code_server.rs) judges it.
//
// Started by that test with Node.js 24 first on PATH (code-server needs it)
// and, where the machine allows, in a network namespace of its own
// (`unshare -n`, only loopback up) so code-server's calls out fail at once.
//
// Environment: SEXTANT_LSP, SCRIPTED_PROVIDER, SEXTANT_VSIX,
// SEXTANT_TEST_WORKSPACE (a copy of the fixture), SEXTANT_TEST_DIR (scratch),
// SEXTANT_TEST_SCRIPT (the provider's script), SEXTANT_TEST_QUESTION,
// SEXTANT_TEST_TASK, SEXTANT_TEST_RESULT.

import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const scratch = env('SEXTANT_TEST_DIR');
const workspace = env('SEXTANT_TEST_WORKSPACE');
const result = { ok: false, steps: [], errors: [] };
const step = (name) => {
  result.steps.push(name);
  console.log(`drive: ${name}`);
};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** Monaco renders spaces as no-break spaces. */
const plain = (text) => text.replace(/\u00a0/g, ' ');

/** Polls `probe` until it returns something truthy; fails with `what` after `ms`. */
async function until(what, probe, ms = 60000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(200);
  }
}

/**
 * Does `act`, then polls `probe` for up to `patience` ms, and again, until
 * `probe` returns something truthy or `ms` have passed. For requests a loaded
 * machine may answer late: acting again too early would cancel the request
 * being waited for.
 */
async function retry(what, act, probe, { patience = 8000, ms = 120000 } = {}) {
  const deadline = Date.now() + ms;
  for (;;) {
    await act();
    const settle = Math.min(Date.now() + patience, deadline);
    while (Date.now() < settle) {
      const value = await probe();
      if (value) return value;
      await sleep(200);
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const children = [];
function start(program, args, name) {
  const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = join(scratch, `${name}.log`);
  const append = (chunk) => writeFileSync(log, chunk, { flag: 'a' });
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  children.push(child);
  return child;
}

async function main() {
  const codeServer = join(here, 'node_modules/.bin/code-server');
  const extensions = join(scratch, 'extensions');
  const userData = join(scratch, 'user-data');

  const portFile = join(scratch, 'provider-url');
  start(
    env('SCRIPTED_PROVIDER'),
    ['--script', env('SEXTANT_TEST_SCRIPT'), '--port-file', portFile, '--requests-log', join(scratch, 'requests.jsonl')],
    'provider',
  );
  const providerUrl = await until('the scripted provider', () => existsSync(portFile) && readFileSync(portFile, 'utf8'));
  step('provider up');

  // Installed from the .vsix exactly as a user would.
  execFileSync(codeServer, ['--extensions-dir', extensions, '--user-data-dir', userData, '--install-extension', env('SEXTANT_VSIX')], {
    stdio: 'inherit',
  });
  step('extension installed');

  mkdirSync(join(userData, 'User'), { recursive: true });
  const settings = {
    'sextant.serverPath': env('SEXTANT_LSP'),
    'sextant.provider': 'openai',
    'sextant.model': 'scripted',
    'sextant.baseUrl': `${providerUrl}/v1`,
    'sextant.completion.debounceMs': 0,
    'sextant.serverSettings': { apiKey: 'test-key', agent: { allowEdits: true } },
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'security.workspace.trust.enabled': false,
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'update.mode': 'none',
    'telemetry.telemetryLevel': 'off',
    'chat.disableAIFeatures': true,
    'editor.hover.delay': 100,
  };
  writeFileSync(join(userData, 'User/settings.json'), JSON.stringify(settings, null, 2));

  const port = await freePort();
  start(
    codeServer,
    [
      '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`,
      '--user-data-dir', userData, '--extensions-dir', extensions,
      '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
      workspace,
    ],
    'code-server',
  );
  const base = `http://127.0.0.1:${port}`;
  await until('code-server to answer', async () => {
    try {
      return (await fetch(`${base}/healthz`)).ok;
    } catch {
      return false;
    }
  });
  step('code-server up');

  // Chromium's sandbox does not start as root; it only loads this local workbench.
  const browser = await chromium.launch({ executablePath: process.env.SEXTANT_CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${base}/?folder=${encodeURIComponent(workspace)}`);
    await page.waitForSelector('.monaco-workbench', { timeout: 90000 });
    step('workbench loaded');

    // The extension activates on startup and shows its status bar item once the server runs.
    const statusItem = page.locator('.statusbar-item', { hasText: 'Sextant' });
    result.statusText = await until('the Sextant status bar item', async () => (await statusItem.count()) > 0 && statusItem.first().innerText(), 90000);
    step('extension active');

    await openFile(page, 'geometry.rs');
    step('geometry.rs open');

    // Hover: go to `midpoint` on line 15 and ask for the hover from the keyboard.
    await goTo(page, 15, 9);
    result.hoverText = await retry(
      'a hover with the repo-map facts',
      async () => {
        await page.keyboard.press('Escape');
        await page.keyboard.press('Control+K');
        await page.keyboard.press('Control+I');
      },
      async () => {
        const text = plain((await page.locator('.monaco-hover:visible').allInnerTexts()).join('\n'));
        return text.includes('halfway') && text;
      },
    );
    await page.keyboard.press('Escape');
    step('hover shown');

    // Code action: Ctrl+. inside `perimeter`, pick the doc comment; the server
    // resolves it through the model into a WorkspaceEdit that VS Code applies.
    await goTo(page, 20, 5);
    const saved = join(workspace, 'src/geometry.rs');
    const before = readFileSync(saved, 'utf8');
    const docAction = page.locator('.action-widget .monaco-list-row', { hasText: 'add doc comment' });
    await retry(
      'the doc comment code action',
      async () => {
        await page.keyboard.press('Escape');
        await page.keyboard.press('Control+.');
      },
      async () => (await docAction.count()) > 0,
    );
    result.codeActions = (await page.locator('.action-widget .monaco-list-row').allInnerTexts()).map((text) => text.trim());
    await docAction.first().click();
    // The edit lands once the model has answered; save until it is on disk.
    result.fileAfterCodeAction = await until('the doc comment in the saved file', async () => {
      await page.keyboard.press('Control+S');
      await sleep(300);
      const text = readFileSync(saved, 'utf8');
      return text !== before && text;
    });
    step('code action applied');

    // Inline completion: type a new function, wait for the ghost text, accept it.
    await page.keyboard.press('Control+End');
    await page.keyboard.type('\npub fn count(points: &[Point]) -> usize {\n');
    let typed = false;
    result.ghostText = await retry(
      'ghost text',
      async () => {
        if (!typed) {
          typed = true;
          await page.keyboard.type('let n = ');
        } else {
          // editor.action.inlineSuggest.trigger: ask again, as a user would.
          await page.keyboard.press('Alt+Backslash');
        }
      },
      async () => plain((await page.locator('.editor-instance .ghost-text-decoration').allInnerTexts()).join('')),
    );
    step('ghost text shown');
    await page.keyboard.press('Tab');
    await sleep(300);
    await page.keyboard.press('Escape');
    await page.keyboard.press('Control+S');
    result.savedFile = await until('the saved file with the accepted completion', () => {
      const text = readFileSync(saved, 'utf8');
      return text.includes('pub fn count') && text;
    });
    step('completion accepted and saved');

    // Chat through the command palette and the input box.
    await runCommand(page, 'Sextant: Ask', 'Ask Sextant', env('SEXTANT_TEST_QUESTION'));
    result.chatDocument = await editorShowing(page, 'the answer document', (text) => text.includes('midpoint') && !text.includes('pub fn'));
    step('chat answer shown');

    // Agent task: the agent edits src/geometry.rs on disk (allowed by the
    // settings), the open editor reloads it, and the summary opens beside.
    await runCommand(page, 'Sextant: Run agent task', 'Sextant agent task', env('SEXTANT_TEST_TASK'));
    // Narrow editor groups wrap markdown lines.
    result.agentDocument = await editorShowing(page, 'the agent summary', (text) => text.replace(/\s+/g, ' ').includes('Files changed'));
    result.fileAfterAgent = readFileSync(saved, 'utf8');
    result.editorAfterAgent = await editorShowing(
      page,
      "the open editor showing the agent's edit",
      (text) => text.includes('pub struct Point') && text.includes('derive(Debug, Clone, Copy)'),
    );
    step('agent edit shown');
    await page.screenshot({ path: join(scratch, 'final.png') });
    result.ok = true;
  } catch (error) {
    result.errors.push(String(error && error.stack ? error.stack : error));
    try {
      const pages = browser.contexts().flatMap((context) => context.pages());
      if (pages[0]) await pages[0].screenshot({ path: join(scratch, 'failure.png') });
    } catch {
      // The screenshot is only a diagnostic.
    }
  } finally {
    await browser.close();
  }
}

async function openFile(page, name) {
  await page.keyboard.press('Control+P');
  await page.waitForSelector('.quick-input-widget:visible');
  await page.keyboard.type(name);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: name }).first().waitFor();
  await page.keyboard.press('Enter');
  await page.locator('.tab.active', { hasText: name }).waitFor();
  await page.locator('.editor-instance .monaco-editor textarea').first().focus();
}

/** Runs `title` from the command palette and answers its input box (`prompt`) with `answer`. */
async function runCommand(page, title, prompt, answer) {
  await page.keyboard.press('F1');
  await page.waitForSelector('.quick-input-widget:visible');
  await page.keyboard.type(title);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first().waitFor();
  await page.keyboard.press('Enter');
  await until(`the input box of ${title}`, async () => (await page.locator('.quick-input-widget:visible').innerText()).includes(prompt));
  await page.keyboard.type(answer);
  await page.keyboard.press('Enter');
}

/** The text of the first open editor (as shown) that `matches`, once there is one. */
function editorShowing(page, what, matches, ms = 90000) {
  return until(
    what,
    async () => (await page.locator('.editor-instance .view-lines').allInnerTexts()).map(plain).find(matches),
    ms,
  );
}

async function goTo(page, line, column) {
  await page.keyboard.press('Control+G');
  await page.waitForSelector('.quick-input-widget:visible');
  await page.keyboard.type(`${line}:${column}`);
  await page.keyboard.press('Enter');
  await sleep(200);
}

try {
  await main();
} catch (error) {
  result.errors.push(String(error && error.stack ? error.stack : error));
} finally {
  for (const child of children) child.kill();
  writeFileSync(env('SEXTANT_TEST_RESULT'), JSON.stringify(result, null, 2));
}
process.exit(result.ok ? 0 : 1);
