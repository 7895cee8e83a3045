// The status bar item: idle, or what the server reports through $/progress
// (indexing the workspace, thinking about a request).
import * as vscode from 'vscode';
import { WorkDoneProgressBegin, WorkDoneProgressEnd, WorkDoneProgressReport } from 'vscode-languageclient/node';

interface Operation {
  title: string;
  message?: string;
  percentage?: number;
}

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  private readonly operations = new Map<string, Operation>();

  constructor() {
    this.item.command = 'sextant.showOutput';
    this.reset();
    this.item.show();
  }

  onProgress(token: string, value: WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd): void {
    if (value.kind === 'begin') {
      this.operations.set(token, { title: value.title, message: value.message, percentage: value.percentage });
    } else if (value.kind === 'report') {
      const operation = this.operations.get(token);
      if (operation) {
        operation.message = value.message ?? operation.message;
        operation.percentage = value.percentage ?? operation.percentage;
      }
    } else {
      this.operations.delete(token);
    }
    this.render();
  }

  reset(): void {
    this.operations.clear();
    this.render();
  }

  setStopped(): void {
    this.operations.clear();
    this.item.text = '$(error) Sextant';
    this.item.tooltip = 'The Sextant language server is not running. Click for its output.';
  }

  private render(): void {
    const latest = [...this.operations.values()].pop();
    if (!latest) {
      this.item.text = '$(compass) Sextant';
      this.item.tooltip = 'Sextant: idle';
      return;
    }
    const detail = [latest.message, latest.percentage !== undefined ? `${latest.percentage}%` : undefined]
      .filter((part) => part)
      .join(' ');
    this.item.text = `$(sync~spin) Sextant: ${latest.title}`;
    this.item.tooltip = detail ? `${latest.title}: ${detail}` : latest.title;
  }

  dispose(): void {
    this.item.dispose();
  }
}
