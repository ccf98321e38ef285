"""Fetches a model from the Hugging Face hub into its cache, reporting progress.

The worker calls fetch() before mlx_vlm.load and hands load the local path, so a first start
shows how far the download got instead of sitting silent for many minutes; `npm run
fetch-model` runs this file to fetch ahead of time (`python download.py <repo id>`).

mlx_vlm.utils.get_model_path downloads with huggingface_hub.snapshot_download and accepts no
progress hook; this is the same call with the same file patterns, plus a tqdm class that
watches the progress bars snapshot_download opens: byte bars (unit "B") where the hub
library has them (huggingface_hub 1.x), else the "Fetching N files" bar.
"""

import os
import sys
import time
from pathlib import Path

# The files mlx_vlm.utils.get_model_path (v0.6.15) downloads.
ALLOW_PATTERNS = ["*.json", "*.jsonl", "*.safetensors", "*.py", "*.model", "*.tiktoken", "*.txt", "*.jinja"]
REPORT_INTERVAL_S = 1.0


class Progress:
    """Sums the bars of one snapshot_download; calls report(dict) at most once per interval,
    and only when something moved."""

    def __init__(self, report, interval_s=REPORT_INTERVAL_S):
        self.report = report
        self.interval_s = interval_s
        self.bars = []
        self.last_sent = None
        self.last_time = 0.0

    def state(self):
        byte_bars = [b for b in self.bars if b.unit == "B" and b.total]
        file_bars = [b for b in self.bars if b.unit != "B" and b.total]
        state = {"stage": "download"}
        if byte_bars:
            state["doneBytes"] = int(max(b.n for b in byte_bars))
            state["totalBytes"] = int(max(b.total for b in byte_bars))
            state["percent"] = round(100 * min(1.0, state["doneBytes"] / state["totalBytes"]), 1)
        if file_bars:
            state["doneFiles"] = int(max(b.n for b in file_bars))
            state["totalFiles"] = int(max(b.total for b in file_bars))
            state.setdefault("percent", round(100 * min(1.0, state["doneFiles"] / state["totalFiles"]), 1))
        return state

    def moved(self, force=False):
        state = self.state()
        if state == self.last_sent or "percent" not in state:
            return
        now = time.monotonic()
        if not force and now - self.last_time < self.interval_s and state["percent"] < 100:
            return
        self.last_sent, self.last_time = state, now
        self.report(state)

    def bar_class(self):
        from tqdm.auto import tqdm

        progress = self
        devnull = open(os.devnull, "w")

        class Bar(tqdm):
            def __init__(self, *args, **kwargs):
                # hub's own tqdm takes `name`; plain tqdm refuses it. Drawing goes nowhere: the
                # worker's stderr is a log, not a terminal.
                kwargs.pop("name", None)
                kwargs.update(disable=False, file=devnull)
                super().__init__(*args, **kwargs)
                progress.bars.append(self)

            def update(self, n=1):
                result = super().update(n)
                progress.moved()
                return result

        return Bar


def is_local(model):
    return Path(model).exists()


def fetch(model, report, interval_s=REPORT_INTERVAL_S):
    """Returns a local directory holding the model; downloads (resuming) what the cache lacks."""
    if is_local(model):
        return model
    from huggingface_hub import snapshot_download

    progress = Progress(report, interval_s)
    path = snapshot_download(repo_id=model, allow_patterns=ALLOW_PATTERNS, tqdm_class=progress.bar_class())
    progress.moved(force=True)
    return path


def describe(state):
    if "totalBytes" in state:
        return f"{state['percent']:.1f}% ({state['doneBytes'] / 1e9:.2f} of {state['totalBytes'] / 1e9:.2f} GB)"
    return f"{state['percent']:.1f}% ({state['doneFiles']} of {state['totalFiles']} files)"


def main(argv):
    if len(argv) != 2:
        print("usage: python download.py <hugging face repo id>", file=sys.stderr)
        return 2
    model = argv[1]
    print(f"fetching {model} into the Hugging Face cache (resumes a partial download)", file=sys.stderr, flush=True)
    printed = []

    def show(state):
        line = f"downloading {model}: {describe(state)}"
        if printed[-1:] != [line]:
            printed.append(line)
            print(line, file=sys.stderr, flush=True)

    try:
        path = fetch(model, show, interval_s=5.0)
    except Exception as exc:  # a CLI: say what failed and exit non-zero
        print(f"could not fetch {model}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"{model} is in {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
