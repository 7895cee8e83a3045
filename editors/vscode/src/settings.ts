// VS Code settings -> the server's JSON settings (initializationOptions and
// workspace/didChangeConfiguration). Pure, so it is unit-tested with node --test.

/** The sextant.* workspace commands the server executes. */
export type ServerCommand = 'sextant.chat' | 'sextant.explain' | 'sextant.agent' | 'sextant.showLastPrompt';

/** A `sextant.<key>` setting and where it goes in the server's settings object. */
export interface SettingSpec {
  /** Key below `sextant.` in VS Code. */
  key: string;
  /** Dotted path in the server settings; `undefined` = client-only, `''` = merged at the top level. */
  serverPath: string | undefined;
}

/** Every setting in package.json's contributes.configuration (a test keeps the two in sync). */
export const SETTINGS: readonly SettingSpec[] = [
  { key: 'serverPath', serverPath: undefined },
  { key: 'provider', serverPath: 'provider' },
  { key: 'model', serverPath: 'model' },
  { key: 'baseUrl', serverPath: 'baseUrl' },
  { key: 'completion.enabled', serverPath: 'lsp.completion.enabled' },
  { key: 'completion.debounceMs', serverPath: 'lsp.completion.debounceMs' },
  { key: 'completion.maxTokens', serverPath: 'lsp.completion.maxTokens' },
  { key: 'hover.ai', serverPath: 'hover.ai' },
  { key: 'results', serverPath: 'lsp.results' },
  { key: 'chatMaxTokens', serverPath: 'lsp.chatMaxTokens' },
  { key: 'serverSettings', serverPath: '' },
];

/** Explicitly set values by `SettingSpec.key`. */
export type SettingValues = Record<string, unknown>;

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Deep merge (objects key by key, anything else replaces), like the server does. */
function mergeInto(target: Json, patch: Json): void {
  for (const [key, value] of Object.entries(patch)) {
    const existing = target[key];
    if (isObject(existing) && isObject(value)) {
      mergeInto(existing, value);
    } else {
      target[key] = value;
    }
  }
}

function setPath(target: Json, dottedPath: string, value: unknown): void {
  const parts = dottedPath.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    if (!isObject(node[part])) {
      node[part] = {};
    }
    node = node[part] as Json;
  }
  node[parts[parts.length - 1]] = value;
}

/**
 * The server settings object for the given explicit values. Settings the
 * user left unset are omitted so the server's own defaults (and its config
 * files) apply. Specific settings win over the free-form `serverSettings`.
 *
 * The extension displays command results itself, so unless the user chose
 * otherwise the server is told not to open result documents too.
 */
export function settingsToServerOptions(values: SettingValues): Json {
  const options: Json = { lsp: { results: 'none' } };
  const passthrough = values['serverSettings'];
  if (isObject(passthrough)) {
    mergeInto(options, structuredClone(passthrough));
  }
  for (const setting of SETTINGS) {
    const value = values[setting.key];
    if (value === undefined || setting.serverPath === undefined || setting.serverPath === '') {
      continue;
    }
    if (typeof value === 'string' && value.trim() === '') {
      continue;
    }
    setPath(options, setting.serverPath, value);
  }
  return options;
}
