// A small stand-in for the `vscode` module: enough of the API for the bundled
// extension and vscode-languageclient to run in plain node against the real
// server. Calls the test cares about are recorded in `fake.recorded`; API
// the extension does not exercise answers with no-op disposables.
'use strict';

const path = require('node:path');
const { pathToFileURL, fileURLToPath } = require('node:url');

const recorded = {
  errors: [],
  warnings: [],
  openedDocuments: [],
  output: [],
  inputAnswers: [],
  statusTexts: [],
};

class Disposable {
  constructor(callback) {
    this.callback = callback;
  }
  static from(...items) {
    return new Disposable(() => items.forEach((item) => item && item.dispose && item.dispose()));
  }
  dispose() {
    if (this.callback) {
      this.callback();
      this.callback = undefined;
    }
  }
}

class EventEmitter {
  constructor() {
    this.listeners = new Set();
    this.event = (listener, thisArg) => {
      const bound = thisArg ? listener.bind(thisArg) : listener;
      this.listeners.add(bound);
      return new Disposable(() => this.listeners.delete(bound));
    };
  }
  fire(value) {
    for (const listener of [...this.listeners]) {
      listener(value);
    }
  }
  dispose() {
    this.listeners.clear();
  }
}

class Uri {
  constructor(scheme, fsPath) {
    this.scheme = scheme;
    this.fsPath = fsPath;
    this.path = fsPath;
  }
  static file(fsPath) {
    return new Uri('file', path.resolve(fsPath));
  }
  static parse(text) {
    if (text.startsWith('file:')) {
      return Uri.file(fileURLToPath(text));
    }
    const scheme = text.split(':')[0];
    return new Uri(scheme, text.slice(scheme.length + 1));
  }
  toString() {
    return this.scheme === 'file' ? pathToFileURL(this.fsPath).href : `${this.scheme}:${this.fsPath}`;
  }
  toJSON() {
    return this.toString();
  }
  with() {
    return this;
  }
}

class Position {
  constructor(line, character) {
    this.line = line;
    this.character = character;
  }
  isBefore(other) {
    return this.line < other.line || (this.line === other.line && this.character < other.character);
  }
  isEqual(other) {
    return this.line === other.line && this.character === other.character;
  }
}

class Range {
  constructor(a, b, c, d) {
    if (typeof a === 'number') {
      this.start = new Position(a, b);
      this.end = new Position(c, d);
    } else {
      this.start = a;
      this.end = b;
    }
  }
  get isEmpty() {
    return this.start.isEqual(this.end);
  }
}

class Selection extends Range {
  constructor(anchor, active) {
    super(anchor, active);
    this.anchor = anchor;
    this.active = active;
  }
}

class CancellationTokenSource {
  constructor() {
    const emitter = new EventEmitter();
    this.token = {
      isCancellationRequested: false,
      onCancellationRequested: emitter.event,
    };
    this.emitter = emitter;
  }
  cancel() {
    this.token.isCancellationRequested = true;
    this.emitter.fire();
  }
  dispose() {}
}

class MarkdownString {
  constructor(value = '') {
    this.value = value;
  }
  appendMarkdown(value) {
    this.value += value;
    return this;
  }
  appendText(value) {
    this.value += value;
    return this;
  }
  appendCodeblock(code, language = '') {
    this.value += `\n\`\`\`${language}\n${code}\n\`\`\`\n`;
    return this;
  }
}

class SnippetString {
  constructor(value = '') {
    this.value = value;
  }
}

class InlineCompletionItem {
  constructor(insertText, range) {
    this.insertText = insertText;
    this.range = range;
  }
}

/** A text document over a string (line-based, LF). */
class TextDocument {
  constructor(uri, languageId, text) {
    this.uri = uri;
    this.fileName = uri.fsPath;
    this.languageId = languageId;
    this.version = 1;
    this.text = text;
    this.isClosed = false;
    this.isDirty = false;
    this.isUntitled = uri.scheme === 'untitled';
    this.eol = 1;
  }
  get lines() {
    return this.text.split('\n');
  }
  get lineCount() {
    return this.lines.length;
  }
  getText(range) {
    if (!range) {
      return this.text;
    }
    return this.text.slice(this.offsetAt(range.start), this.offsetAt(range.end));
  }
  lineAt(lineOrPosition) {
    const line = typeof lineOrPosition === 'number' ? lineOrPosition : lineOrPosition.line;
    const text = this.lines[line] ?? '';
    return { lineNumber: line, text, range: new Range(line, 0, line, text.length), isEmptyOrWhitespace: !text.trim() };
  }
  offsetAt(position) {
    const lines = this.lines;
    let offset = 0;
    for (let index = 0; index < position.line && index < lines.length; index += 1) {
      offset += lines[index].length + 1;
    }
    return offset + position.character;
  }
  positionAt(offset) {
    const before = this.text.slice(0, offset).split('\n');
    return new Position(before.length - 1, before[before.length - 1].length);
  }
  save() {
    return Promise.resolve(true);
  }
}

const configuration = new Map();
const onDidChangeConfiguration = new EventEmitter();
const providers = { inline: [] };
const commands = new Map();
let nextInputAnswer = [];

function noOpDisposable() {
  return new Disposable(() => undefined);
}

/** Any API the test does not model: a function returning a disposable, or an event. */
function lenient(target) {
  return new Proxy(target, {
    get(object, property) {
      if (property in object || typeof property === 'symbol') {
        return object[property];
      }
      if (String(property).startsWith('onDid') || String(property).startsWith('onWill')) {
        return () => noOpDisposable();
      }
      return () => noOpDisposable();
    },
  });
}

const workspaceFolders = [];
const textDocuments = [];

const statusBarItem = () => {
  const item = {
    text: '',
    tooltip: '',
    command: undefined,
    show() {},
    hide() {},
    dispose() {},
  };
  return new Proxy(item, {
    set(object, property, value) {
      object[property] = value;
      if (property === 'text') {
        recorded.statusTexts.push(value);
      }
      return true;
    },
  });
};

const vscode = {
  version: '1.82.0',
  Disposable,
  EventEmitter,
  Uri,
  Position,
  Range,
  Selection,
  CancellationTokenSource,
  MarkdownString,
  SnippetString,
  InlineCompletionItem,
  ViewColumn: { Active: -1, Beside: -2, One: 1 },
  StatusBarAlignment: { Left: 1, Right: 2 },
  ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
  InlineCompletionTriggerKind: { Invoke: 0, Automatic: 1 },
  DiagnosticSeverity: { Error: 0, Warning: 1, Information: 2, Hint: 3 },
  NotebookCellKind: { Markup: 1, Code: 2 },
  ConfigurationTarget: { Global: 1, Workspace: 2, WorkspaceFolder: 3 },
  env: { appName: 'fake-vscode', language: 'en', openExternal: async () => false },
  extensions: { getExtension: () => undefined, all: [] },
  workspace: lenient(
    {
      workspaceFolders,
      textDocuments,
      notebookDocuments: [],
      getConfiguration(section) {
        const prefix = section ? `${section}.` : '';
        return {
          get(key, fallback) {
            const value = configuration.get(prefix + key);
            return value === undefined ? fallback : value;
          },
          has(key) {
            return configuration.has(prefix + key);
          },
          inspect(key) {
            return { key: prefix + key, globalValue: configuration.get(prefix + key) };
          },
          update: async () => undefined,
        };
      },
      onDidChangeConfiguration: onDidChangeConfiguration.event,
      async openTextDocument(options) {
        const document = new TextDocument(new Uri('untitled', `result-${recorded.openedDocuments.length}`), options.language, options.content);
        recorded.openedDocuments.push(options.content);
        return document;
      },
      createFileSystemWatcher: () => lenient({ dispose() {} }),
      getWorkspaceFolder: (uri) => workspaceFolders.find((folder) => uri.fsPath.startsWith(folder.uri.fsPath)),
    },
    'workspace',
  ),
  window: lenient(
    {
      activeTextEditor: undefined,
      visibleTextEditors: [],
      tabGroups: { all: [] },
      createOutputChannel(name) {
        const channel = {
          name,
          append: (text) => recorded.output.push(text),
          appendLine: (text) => recorded.output.push(text),
          replace() {},
          clear() {},
          show() {},
          hide() {},
          dispose() {},
        };
        return lenient(channel);
      },
      createStatusBarItem: statusBarItem,
      async showInputBox() {
        return nextInputAnswer.shift();
      },
      async showErrorMessage(message) {
        recorded.errors.push(message);
        return undefined;
      },
      async showWarningMessage(message) {
        recorded.warnings.push(message);
        return undefined;
      },
      async showInformationMessage() {
        return undefined;
      },
      async withProgress(_options, task) {
        return task({ report() {} }, new CancellationTokenSource().token);
      },
      async showTextDocument(document) {
        return { document };
      },
    },
    'window',
  ),
  languages: lenient(
    {
      match(selector, document) {
        const selectors = Array.isArray(selector) ? selector : [selector];
        return selectors.some((entry) => typeof entry === 'string' || !entry.scheme || entry.scheme === document.uri.scheme)
          ? 10
          : 0;
      },
      registerInlineCompletionItemProvider(_selector, provider) {
        providers.inline.push(provider);
        return noOpDisposable();
      },
      createDiagnosticCollection: () => lenient({ set() {}, delete() {}, clear() {}, dispose() {}, forEach() {} }),
    },
    'languages',
  ),
  commands: lenient(
    {
      registerCommand(id, callback) {
        if (commands.has(id)) {
          throw new Error(`command '${id}' already exists`);
        }
        commands.set(id, callback);
        return new Disposable(() => commands.delete(id));
      },
      async executeCommand(id, ...args) {
        const callback = commands.get(id);
        if (!callback) {
          throw new Error(`command '${id}' not found`);
        }
        return callback(...args);
      },
      getCommands: async () => [...commands.keys()],
    },
    'commands',
  ),
};

/** A value that tolerates anything: every property and every call yields it again. */
const anything = new Proxy(function anythingValue() {}, {
  get(_target, property) {
    if (property === Symbol.toPrimitive) {
      return () => 0;
    }
    return property === 'then' ? undefined : anything;
  },
  apply() {
    return anything;
  },
  construct() {
    return {};
  },
});

/** Classes the test does not model (CodeAction, Hover, ...): keep constructor arguments, tolerate statics. */
const genericClasses = new Map();
function genericClass(name) {
  if (!genericClasses.has(name)) {
    const cls = class {
      constructor(...args) {
        this.args = args;
      }
    };
    Object.defineProperty(cls, 'name', { value: name });
    genericClasses.set(
      name,
      new Proxy(cls, {
        get(target, property) {
          return property in target || typeof property === 'symbol' ? target[property] : anything;
        },
      }),
    );
  }
  return genericClasses.get(name);
}

const lenientVscode = new Proxy(vscode, {
  get(target, property) {
    if (property in target || typeof property === 'symbol') {
      return target[property];
    }
    return /^[A-Z]/.test(property) ? genericClass(property) : anything;
  },
});

module.exports = {
  vscode: lenientVscode,
  recorded,
  providers,
  configuration,
  TextDocument,
  /** Opens `fsPath` as the active editor's document with the cursor at `line`:`character`. */
  openEditor(fsPath, languageId, text, line, character) {
    const document = new TextDocument(Uri.file(fsPath), languageId, text);
    textDocuments.push(document);
    const cursor = new Position(line, character);
    vscode.window.activeTextEditor = { document, selection: new Selection(cursor, cursor) };
    return document;
  },
  addWorkspaceFolder(fsPath) {
    workspaceFolders.push({ uri: Uri.file(fsPath), name: path.basename(fsPath), index: workspaceFolders.length });
  },
  answerNextInput(text) {
    nextInputAnswer.push(text);
  },
  newCancellationToken() {
    return new CancellationTokenSource().token;
  },
};
