// Sextant for VS Code: starts sextant-lsp, shows its inline completions and
// status, and adds the chat / explain / agent / last-prompt commands.
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
  TransportKind,
  WorkDoneProgress,
  WorkDoneProgressCreateRequest,
} from 'vscode-languageclient/node';

import { ServerCommand, SETTINGS, settingsToServerOptions, SettingValues } from './settings';
import { InlineCompletionProvider } from './inline';
import { StatusBar } from './status';

/** Server commands whose answer is markdown for the user (sextant.codeAction only applies an edit). */
const DISPLAYED_COMMANDS: readonly string[] = [
  'sextant.chat',
  'sextant.explain',
  'sextant.agent',
  'sextant.showLastPrompt',
] satisfies ServerCommand[];

let client: LanguageClient | undefined;
let statusBar: StatusBar | undefined;
let output: vscode.OutputChannel | undefined;

/** The user's explicit `sextant.*` settings (defaults are left to the server). */
function readSettings(): SettingValues {
  const configuration = vscode.workspace.getConfiguration('sextant');
  const values: SettingValues = {};
  for (const setting of SETTINGS) {
    const inspected = configuration.inspect(setting.key);
    const value = inspected?.workspaceFolderValue ?? inspected?.workspaceValue ?? inspected?.globalValue;
    if (value !== undefined) {
      values[setting.key] = value;
    }
  }
  return values;
}

/** `sextant.serverPath`, else the binary bundled in the extension, else `sextant-lsp` on PATH. */
function serverCommand(context: vscode.ExtensionContext): string {
  const configured = vscode.workspace.getConfiguration('sextant').get<string>('serverPath', '').trim();
  if (configured !== '') {
    return configured;
  }
  const executable = process.platform === 'win32' ? 'sextant-lsp.exe' : 'sextant-lsp';
  const bundled = context.asAbsolutePath(path.join('bin', executable));
  return fs.existsSync(bundled) ? bundled : executable;
}

function createClient(context: vscode.ExtensionContext): LanguageClient {
  const command = serverCommand(context);
  const serverOptions: ServerOptions = { command, transport: TransportKind.stdio };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
    initializationOptions: settingsToServerOptions(readSettings()),
    outputChannel: output,
    middleware: {
      // Commands the server attaches to code actions come back here: show
      // their answer like the ones started from the command palette.
      executeCommand: async (name, args, next) => {
        const result = await next(name, args);
        if (DISPLAYED_COMMANDS.includes(name)) {
          showResult(name, result);
        }
        return result;
      },
    },
  };
  return new LanguageClient('sextant', 'Sextant', serverOptions, clientOptions);
}

async function startClient(context: vscode.ExtensionContext): Promise<void> {
  const created = createClient(context);
  client = created;
  try {
    await created.start();
  } catch (error) {
    statusBar?.setStopped();
    void vscode.window.showErrorMessage(
      `Sextant: cannot start the language server (${errorText(error)}). Set "sextant.serverPath" to the sextant-lsp binary.`,
    );
    return;
  }
  // Server-created progress tokens drive the status bar (idle / indexing / thinking).
  created.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
    const disposable = created.onProgress(WorkDoneProgress.type, token, (value) => {
      statusBar?.onProgress(String(token), value);
      if (value.kind === 'end') {
        disposable.dispose();
      }
    });
  });
  created.onDidChangeState(({ newState }) => {
    if (newState === State.Stopped) {
      statusBar?.setStopped();
    } else if (newState === State.Running) {
      statusBar?.reset();
    }
  });
  statusBar?.reset();
}

async function restartClient(context: vscode.ExtensionContext): Promise<void> {
  const previous = client;
  client = undefined;
  if (previous) {
    await previous.stop().catch(() => undefined);
  }
  await startClient(context);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Markdown shown for a command result (the server answers with markdown text; other data is shown as JSON). */
function resultMarkdown(result: unknown): string | undefined {
  if (typeof result === 'string') {
    return result;
  }
  if (result === null || result === undefined) {
    return undefined;
  }
  return '```json\n' + JSON.stringify(result, null, 2) + '\n```';
}

function showResult(command: string, result: unknown): void {
  const markdown = resultMarkdown(result);
  if (markdown === undefined) {
    return;
  }
  output?.appendLine(`--- ${command}\n${markdown}`);
  void vscode.workspace
    .openTextDocument({ language: 'markdown', content: markdown })
    .then((document) => vscode.window.showTextDocument(document, { viewColumn: vscode.ViewColumn.Beside, preview: true }));
}

/** Runs a sextant.* command on the server with a progress notification, then shows the answer. */
async function runServerCommand(command: ServerCommand, argument?: object): Promise<void> {
  const running = client;
  if (!running || !running.isRunning()) {
    void vscode.window.showErrorMessage('Sextant: the language server is not running (see the "Sextant" output).');
    return;
  }
  try {
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Sextant: ${command}`, cancellable: false },
      () =>
        running.sendRequest(ExecuteCommandRequest.type, {
          command,
          arguments: argument === undefined ? [] : [argument],
        }),
    );
    showResult(command, result);
  } catch (error) {
    void vscode.window.showErrorMessage(`Sextant: ${command} failed: ${errorText(error)}`);
  }
}

function editorContext(editor: vscode.TextEditor | undefined, wholeLineWhenEmpty: boolean) {
  if (!editor || !client) {
    return {};
  }
  const uri = client.code2ProtocolConverter.asUri(editor.document.uri);
  let selection: vscode.Range = editor.selection;
  if (selection.isEmpty) {
    if (!wholeLineWhenEmpty) {
      return { uri };
    }
    selection = editor.document.lineAt(editor.selection.active.line).range;
  }
  return { uri, range: client.code2ProtocolConverter.asRange(selection) };
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel('Sextant');
  statusBar = new StatusBar();
  context.subscriptions.push(output, statusBar);

  context.subscriptions.push(
    vscode.commands.registerCommand('sextant.ask', async () => {
      const prompt = await vscode.window.showInputBox({ prompt: 'Ask Sextant', placeHolder: 'How does … work?' });
      if (prompt) {
        await runServerCommand('sextant.chat', { prompt, ...editorContext(vscode.window.activeTextEditor, false) });
      }
    }),
    vscode.commands.registerCommand('sextant.explainSelection', async () => {
      const target = editorContext(vscode.window.activeTextEditor, true);
      if (!('range' in target)) {
        void vscode.window.showWarningMessage('Sextant: open a file and select the code to explain.');
        return;
      }
      await runServerCommand('sextant.explain', target);
    }),
    vscode.commands.registerCommand('sextant.runAgent', async () => {
      const task = await vscode.window.showInputBox({ prompt: 'Sextant agent task', placeHolder: 'Add a test for …' });
      if (task) {
        await runServerCommand('sextant.agent', { task });
      }
    }),
    vscode.commands.registerCommand('sextant.lastPrompt', () => runServerCommand('sextant.showLastPrompt')),
    vscode.commands.registerCommand('sextant.restartServer', () => restartClient(context)),
    vscode.commands.registerCommand('sextant.showOutput', () => output?.show()),
    vscode.languages.registerInlineCompletionItemProvider({ pattern: '**' }, new InlineCompletionProvider(() => client)),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (!event.affectsConfiguration('sextant')) {
        return;
      }
      if (event.affectsConfiguration('sextant.serverPath')) {
        await restartClient(context);
        return;
      }
      await client?.sendNotification(DidChangeConfigurationNotification.type, {
        settings: { sextant: settingsToServerOptions(readSettings()) },
      });
    }),
  );

  await startClient(context);
}

export async function deactivate(): Promise<void> {
  const running = client;
  client = undefined;
  await running?.stop();
}
