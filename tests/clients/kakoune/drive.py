#!/usr/bin/env python3
"""Kakoune 2022.10 + kak-lsp 17.1.2 drive sextant-lsp, as a user at the keyboard.

Run by tests/tests/editors.rs (which checks the result): installs this
directory's kakrc and kak-lsp.toml as the user's configuration, starts
`kak` in a tmux server of its own and types into it with send-keys, reading
what the user sees with capture-pane and what was saved with `:w` from disk.
Environment: SEXTANT_TEST_WORKSPACE, SEXTANT_TEST_RESULT, SEXTANT_TEST_ACTION,
XDG_CONFIG_HOME, TMPDIR (all set by the test); kak, kak-lsp, sextant-lsp and
tmux on PATH. Standard library only.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
WORKSPACE = pathlib.Path(os.environ["SEXTANT_TEST_WORKSPACE"])
SOURCE = WORKSPACE / "src/geometry.rs"
CONFIG = pathlib.Path(os.environ["XDG_CONFIG_HOME"])
SOCKET = pathlib.Path(os.environ["TMPDIR"]) / "tmux-kak"
STEP_SECONDS = 30

result = {}


def tmux(*args):
    return subprocess.run(["tmux", "-S", str(SOCKET), *args], check=True, capture_output=True, text=True).stdout


def screen():
    return tmux("capture-pane", "-p")


def keys(*sequence, pause=0.3):
    """Types each key (tmux key names, or literal text) and lets Kakoune react."""
    for key in sequence:
        tmux("send-keys", key)
        time.sleep(pause)


def command(text):
    """`:text` Enter, as typed in normal mode."""
    keys(":")
    tmux("send-keys", "-l", text)
    keys("Enter")


def wait_for(what, predicate, retry=None, every=2.0):
    deadline = time.time() + STEP_SECONDS
    last_retry = 0.0
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        if retry and time.time() - last_retry > every:
            last_retry = time.time()
            retry()
        time.sleep(0.1)


def saved_text():
    return SOURCE.read_text()


def line_of(needle):
    for number, line in enumerate(saved_text().splitlines(), start=1):
        if needle in line:
            return number
    raise ValueError(f"{needle!r} not in the file")


def scenario():
    (CONFIG / "kak").mkdir(parents=True, exist_ok=True)
    (CONFIG / "kak-lsp").mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "kakrc", CONFIG / "kak/kakrc")
    shutil.copy(HERE / "kak-lsp.toml", CONFIG / "kak-lsp/kak-lsp.toml")
    tmux("-f", "/dev/null", "new-session", "-d", "-x", "100", "-y", "30", "-c", str(WORKSPACE), "kak src/geometry.rs")
    # Escape followed by a key must not read as Alt+key.
    tmux("set-option", "-s", "escape-time", "25")

    result["step"] = "hover"

    def ask_hover():
        keys("Escape")
        command("exec gh22g26l")
        command("lsp-hover")

    # (the info box, not the source under it: only the hover says where the definition is)
    result["hover"] = wait_for("the hover box", lambda: "defined at" in screen() and screen(), ask_hover)
    keys("Escape")

    result["step"] = "code action"
    command(f"exec gh{line_of('pub fn perimeter')}g")
    command("lsp-code-actions")
    menu = wait_for("the code action menu", lambda: "add doc comment" in screen() and screen())
    # (the menu lays the titles out in columns)
    cells = [cell.strip(" │█") for line in menu.splitlines() for cell in re.split(r"\s{2,}|│", line)]
    result["offered"] = [cell for cell in cells if cell.startswith("Sextant:")]
    # The menu filters on what is typed; Enter runs the one left.
    assert "doc" in os.environ["SEXTANT_TEST_ACTION"]
    keys("doc", "Enter")

    def save():
        keys("Escape")
        command("w")

    result["text_after_action"] = wait_for("the doc comment", lambda: "/// Sum of" in saved_text() and saved_text(), save)

    result["step"] = "completion"
    command(f"exec gh{line_of('let mut total = 0.0;')}g")
    keys("o")
    result["menu"] = wait_for("the completion menu", lambda: "let _ = count" in screen() and screen())
    keys("C-n", "Escape")
    command("w")
    result["text_after_completion"] = wait_for(
        "the completion", lambda: "let _ = count;" in saved_text() and saved_text(), save
    )

    result["step"] = "chat"
    command(f"exec gh{line_of('pub fn midpoint')}g")
    command("sextant-chat What does midpoint return?")
    result["chat_shown"] = wait_for("the chat answer on the screen", lambda: "midpoint returns" in screen() and screen())

    result["step"] = "shutdown"
    keys("Escape")
    # `lsp-stop` ends kak-lsp; kak-lsp 17 stops a server by closing its input
    # (no shutdown request), and logs when the server has closed its output.
    command("lsp-stop")
    log = CONFIG / "kak/kak-lsp.log"
    result["kak_lsp_log"] = wait_for(
        "the server to exit", lambda: "Language server closed pipe" in log.read_text(errors="replace") and log.read_text()
    )
    command("quit!")


def main():
    try:
        scenario()
        result["ok"] = True
    except Exception as error:  # every failure is reported in the result
        result["error"] = f"{result.get('step', 'start')}: {error!r}"
        try:
            result["screen"] = screen()
        except Exception:
            pass
    finally:
        try:
            if not result.get("ok"):
                keys("Escape")
                command("lsp-stop")  # no kak-lsp daemon left behind
                time.sleep(1)
            tmux("kill-server")
        except Exception:
            pass
        pathlib.Path(os.environ["SEXTANT_TEST_RESULT"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
