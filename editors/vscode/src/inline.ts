// Inline completions: VS Code asks this provider, which forwards to the
// server's textDocument/inlineCompletion (LSP 3.18). Registered by hand
// because the server announces the capability outside the 3.17 schema that
// vscode-languageclient 9 reads.
import * as vscode from 'vscode';
import { LanguageClient } from 'vscode-languageclient/node';

/** The wire shapes of LSP 3.18 inline completion. */
interface LspPosition {
  line: number;
  character: number;
}
interface LspRange {
  start: LspPosition;
  end: LspPosition;
}
interface LspInlineCompletionItem {
  insertText: string | { kind: 'snippet'; value: string };
  filterText?: string;
  range?: LspRange;
}
type LspInlineCompletionResult = LspInlineCompletionItem[] | { items: LspInlineCompletionItem[] } | null;

const INLINE_COMPLETION_METHOD = 'textDocument/inlineCompletion';

export class InlineCompletionProvider implements vscode.InlineCompletionItemProvider {
  constructor(private readonly client: () => LanguageClient | undefined) {}

  async provideInlineCompletionItems(
    document: vscode.TextDocument,
    position: vscode.Position,
    context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
  ): Promise<vscode.InlineCompletionItem[]> {
    const client = this.client();
    if (!client || !client.isRunning()) {
      return [];
    }
    const convert = client.code2ProtocolConverter;
    const params = {
      textDocument: convert.asTextDocumentIdentifier(document),
      position: convert.asPosition(position),
      context: { triggerKind: context.triggerKind === vscode.InlineCompletionTriggerKind.Invoke ? 1 : 2 },
    };
    let result: LspInlineCompletionResult;
    try {
      result = await client.sendRequest<LspInlineCompletionResult>(INLINE_COMPLETION_METHOD, params, token);
    } catch (error) {
      if (!token.isCancellationRequested) {
        client.warn(`inline completion failed: ${error instanceof Error ? error.message : String(error)}`);
      }
      return [];
    }
    const items = Array.isArray(result) ? result : result?.items ?? [];
    return items.map((item) => {
      const text =
        typeof item.insertText === 'string' ? item.insertText : new vscode.SnippetString(item.insertText.value);
      const range = item.range ? client.protocol2CodeConverter.asRange(item.range) : undefined;
      const completion = new vscode.InlineCompletionItem(text, range);
      if (item.filterText !== undefined) {
        completion.filterText = item.filterText;
      }
      return completion;
    });
  }
}
