# aider's repo map as a benchmark peer for `sextant bench map` (run by it;
# needs `pip install aider-chat`). Usage: python3 bench_map_aider.py ROOT TOKENS CACHE_DIR
#
# Same inputs as `sextant map ROOT --tokens N`: every .rs and .py file under
# ROOT (hidden directories skipped), no chat files, no mentions. Tokens are
# estimated as characters / 4 (aider would ask the model's tokenizer, which
# needs a download). aider keeps its tag cache in CACHE_DIR instead of
# ROOT/.aider.tags.cache.v4, so the measured tree is left untouched: an empty
# CACHE_DIR is a cold run, a filled one a warm run.
import os
import sys

root, tokens, cache_dir = os.path.abspath(sys.argv[1]), int(sys.argv[2]), os.path.abspath(sys.argv[3])

from aider.io import InputOutput  # noqa: E402
from aider.repomap import RepoMap  # noqa: E402


class CharacterEstimate:
    def token_count(self, text):
        return len(text) / 4


files = []
for directory, subdirectories, names in os.walk(root):
    subdirectories[:] = sorted(name for name in subdirectories if not name.startswith("."))
    files.extend(os.path.join(directory, name) for name in sorted(names) if name.endswith((".rs", ".py")))

# An absolute path: Path(root) / TAGS_CACHE_DIR is then the cache directory itself.
RepoMap.TAGS_CACHE_DIR = cache_dir
io = InputOutput(yes=True, pretty=False, fancy_input=False)
repo_map = RepoMap(map_tokens=tokens, root=root, main_model=CharacterEstimate(), io=io)
text = repo_map.get_repo_map(chat_files=[], other_files=files) or ""
if not text:
    sys.exit("aider produced no map")
print(text)
