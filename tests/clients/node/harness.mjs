// Shared helpers for driving sextant-lsp over stdio with the real
// vscode-languageserver-protocol client library.
//
// Environment (set by the Rust tests in tests/tests/lsp_*.rs):
//   SEXTANT_LSP_BIN          path to target/debug/sextant-lsp
//   SCRIPTED_PROVIDER_BIN    path to target/debug/scripted-provider
//   SEXTANT_FIXTURE          path to tests/fixtures/lsp-workspace

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import assert from 'node:assert/strict';
import {
  createProtocolConnection,
  StreamMessageReader,
  StreamMessageWriter,
  InitializeRequest,
  InitializedNotification,
  ShutdownRequest,
  ExitNotification,
  WorkDoneProgressCreateRequest,
  ShowDocumentRequest,
  ShowMessageNotification,
  RegistrationRequest,
  ApplyWorkspaceEditRequest,
  DidOpenTextDocumentNotification,
  WorkDoneProgress,
} from 'vscode-languageserver-protocol/node';

/** Generous: CI machines are small and busy. */
export const TIMEOUT_MS = 60_000;

function requiredEnv(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run these tests through cargo test -p sextant-tests)`);
  if (!fs.existsSync(value)) throw new Error(`${name}=${value} does not exist`);
  return value;
}

/** Rejects if `promise` does not settle within `ms`. */
export function within(promise, what, ms = TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `predicate` until it returns a truthy value. */
export async function waitFor(predicate, what, ms = TIMEOUT_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A fresh copy of the fixture workspace in a temp dir. */
export function copyWorkspace() {
  const fixture = requiredEnv('SEXTANT_FIXTURE');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sextant-lsp-'));
  fs.cpSync(fixture, dir, { recursive: true });
  return dir;
}

export function fileUri(file) {
  return pathToFileURL(file).href;
}

/**
 * Starts the scripted provider binary with `script`; resolves to
 * { url, requests(), stop() } where requests() reads the JSON-lines log.
 */
export async function startProvider(script) {
  const bin = requiredEnv('SCRIPTED_PROVIDER_BIN');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sextant-provider-'));
  const scriptFile = path.join(dir, 'script.json');
  const log = path.join(dir, 'requests.jsonl');
  fs.writeFileSync(scriptFile, JSON.stringify(script));
  const child = spawn(bin, ['--script', scriptFile, '--requests-log', log], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  const url = await within(
    new Promise((resolve, reject) => {
      child.stdout.on('data', (chunk) => {
        output += chunk;
        const match = output.match(/listening on (http:\/\/\S+)/);
        if (match) resolve(match[1]);
      });
      child.on('exit', (code) => reject(new Error(`scripted-provider exited with ${code}: ${output}`)));
    }),
    'the scripted provider to listen',
  );
  return {
    url,
    requests() {
      if (!fs.existsSync(log)) return [];
      return fs
        .readFileSync(log, 'utf8')
        .split('\n')
        .filter((line) => line.trim())
        .map((line) => JSON.parse(line))
        .filter((request) => request.method === 'POST');
    },
    stop() {
      child.kill();
    },
  };
}

/** initializationOptions that point every model call at the scripted provider. */
export function scriptedOptions(providerUrl, extra = {}) {
  return { provider: 'openai', baseUrl: `${providerUrl}/v1`, model: 'scripted', maxRetries: 0, ...extra };
}

/**
 * Spawns the server, connects, and initializes. Returns a client object with
 * the connection, the initialize result and everything the server sent.
 */
export async function startServer({ workspace, initializationOptions = {}, capabilities = {}, clientSupports = {} } = {}) {
  const bin = requiredEnv('SEXTANT_LSP_BIN');
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sextant-cache-'));
  const env = { ...process.env, XDG_CACHE_HOME: cacheDir, SEXTANT_CONFIG: path.join(cacheDir, 'no-config.toml'), SEXTANT_LOG: 'debug' };
  for (const name of Object.keys(env)) {
    if (/^(SEXTANT_(PROVIDER|MODEL|BASE_URL|API_KEY|COMPLETION_\w+|TIMEOUT_SECS|MAX_RETRIES)|OPENAI_API_KEY|ANTHROPIC_API_KEY|OLLAMA_HOST)$/.test(name)) delete env[name];
  }
  const child = spawn(bin, [], { stdio: ['pipe', 'pipe', 'pipe'], env });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const connection = createProtocolConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
  const progress = []; // { token, value }
  const messages = []; // window/showMessage params
  const shownDocuments = []; // window/showDocument params
  const registrations = [];
  const appliedEdits = [];
  // $/progress is routed per token: listen on every token the server creates.
  const watchProgress = (token) => connection.onProgress(WorkDoneProgress.type, token, (value) => progress.push({ token, value }));
  connection.onRequest(WorkDoneProgressCreateRequest.type, (params) => {
    watchProgress(params.token);
    return null;
  });
  connection.onNotification(ShowMessageNotification.type, (params) => messages.push(params));
  connection.onNotification('window/logMessage', () => {});
  connection.onRequest(ShowDocumentRequest.type, (params) => {
    shownDocuments.push(params);
    return { success: true };
  });
  connection.onRequest(RegistrationRequest.type, (params) => {
    registrations.push(...params.registrations);
    return null;
  });
  connection.onRequest(ApplyWorkspaceEditRequest.type, (params) => {
    appliedEdits.push(params);
    return { applied: true };
  });
  connection.listen();

  const root = workspace ?? copyWorkspace();
  const initialize = await within(
    connection.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      rootUri: fileUri(root),
      workspaceFolders: [{ uri: fileUri(root), name: 'fixture' }],
      initializationOptions,
      capabilities: {
        window: { workDoneProgress: true, showDocument: { support: clientSupports.showDocument ?? true } },
        workspace: {
          applyEdit: true,
          workspaceEdit: { documentChanges: true },
          didChangeWatchedFiles: { dynamicRegistration: true },
          configuration: false,
        },
        textDocument: {
          synchronization: { dynamicRegistration: false },
          codeAction: {
            resolveSupport: { properties: clientSupports.resolve === false ? [] : ['edit'] },
            codeActionLiteralSupport: { codeActionKind: { valueSet: ['quickfix', 'refactor', 'refactor.rewrite'] } },
          },
          inlineCompletion: {},
        },
        ...capabilities,
      },
    }),
    'the initialize response',
  );
  connection.sendNotification(InitializedNotification.type, {});

  const client = {
    connection,
    child,
    root,
    initialize,
    progress,
    messages,
    shownDocuments,
    registrations,
    appliedEdits,
    watchProgress,
    stderr: () => stderr,
    uri: (relative) => fileUri(path.join(root, relative)),
    /** Opens a workspace file (its disk contents) in the server. */
    open(relative, languageId = relative.endsWith('.py') ? 'python' : 'rust') {
      const text = fs.readFileSync(path.join(root, relative), 'utf8');
      connection.sendNotification(DidOpenTextDocumentNotification.type, {
        textDocument: { uri: client.uri(relative), languageId, version: 1, text },
      });
      return text;
    },
    /** Waits until the startup indexing progress has ended. */
    async indexed() {
      await waitFor(
        () => progress.some((p) => p.value.kind === 'end' && String(p.token).includes('Indexing')),
        'the repo-map indexing progress to end',
      );
    },
    request(type, params, token) {
      return within(connection.sendRequest(type, params, token), `the ${type.method ?? type} response`);
    },
    async stop() {
      try {
        await within(connection.sendRequest(ShutdownRequest.type), 'the shutdown response', 20_000);
        await connection.sendNotification(ExitNotification.type);
        child.stdin.end();
        const status = await within(exited, 'the server to exit', 20_000);
        assert.equal(status.code, 0, `server exit status ${JSON.stringify(status)}`);
      } finally {
        connection.dispose();
        child.kill();
      }
    },
  };
  return client;
}

/** Runs named steps in order, printing each; exits non-zero on the first failure. */
export async function run(name, steps) {
  const cleanups = [];
  let failed = false;
  try {
    for (const [title, step] of steps) {
      const started = Date.now();
      await step(cleanups);
      console.log(`ok - ${name}: ${title} (${Date.now() - started} ms)`);
    }
  } catch (error) {
    failed = true;
    console.error(`not ok - ${name}: ${error.stack ?? error}`);
  } finally {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup(failed);
      } catch (error) {
        console.error(`cleanup failed: ${error}`);
        failed = true;
      }
    }
  }
  process.exit(failed ? 1 : 0);
}
