"""Earshot MLX worker: one process, one model, several conversations decoded in one batch.

Started by server/engines/mlx/pool.ts as `python worker.py`; it speaks length-prefixed
msgpack frames (4-byte big-endian length, then a map) on stdin/stdout. Logs go to stderr.

TS -> worker
  {type: 'load', model, maxBatch?}   first frame; maxBatch defaults to $EARSHOT_MLX_MAX_BATCH or 8;
      a hub id is downloaded first (download.py), with progress frames
  {type: 'run', batchId, turns: [{turnId, messages: [{role, parts: [{type: 'text', text} |
      {type: 'audio', pcm: float32 LE 16 kHz mono bytes}]}], params: {maxTokens, temperature,
      topP?, stop?}}]}
  {type: 'cancel', turnId}   {type: 'ping'}   {type: 'shutdown'}
worker -> TS
  {type: 'loading', stage: 'download' | 'load', percent?, doneBytes?, totalBytes?, doneFiles?, totalFiles?}
      sent only when something moved, at most once a second
  {type: 'ready', model, capabilities: {maxBatch, audio, maxAudioMs, probe}}   probe: what a
      one-word prompt looks like to the model (BOS count and position, audio tokens for 1 s)
  {type: 'delta', turnId, text}
  {type: 'done', turnId, usage: {promptTokens, completionTokens, audioTokens}, finish}
  {type: 'error', turnId?, code, message}   without turnId after load: fatal, the worker exits 2
  {type: 'pong', peakMemoryBytes?}   peak MLX memory, where mlx.core reports it

A reader thread only reads frames; the main thread owns the model and answers everything
between two decode steps, so cancel takes effect within one token and a pong proves that
generation is still moving (a stuck forward pass stops the pongs and the pool replaces us).

Batching follows mlx_vlm/server/generation.py: per turn prepare_inputs, then
model.get_input_embeddings (audio goes in as embeddings), then BatchGenerator.insert into the
running batch; BatchGenerator.next() yields one token per sequence; cancel is
BatchGenerator.remove(uid). Turns beyond maxBatch wait here and join as sequences finish.
The sampler belongs to the BatchGenerator, so temperature/topP come from the turn that opened
the batch; a new batch (and sampler) starts whenever the worker is idle.

History audio: only the newest message carries audio; the pool sends earlier clips as text
notes (server/engines/history.ts). conversation.py says why, and how the prompt is kept clean
of what the Gemma 4 template and mlx_vlm would do to it (glued text, control strings, a
second BOS, a silent fallback that drops the audio).

The modules beside this one: model.py (the model and a turn's prompt), conversation.py (the
chat), stops.py (stop strings), frames.py (the framing), download.py (the hub), failures.py
(error codes).
"""

import os
import queue
import sys
import threading
import traceback
from collections import deque

from conversation import MAX_AUDIO_MS, TurnError
from download import fetch
from failures import classify_load_error, is_out_of_memory
from frames import FrameWriter, read_frame
from model import Model, peak_memory_reader
from stops import StopScanner

DEFAULT_MAX_BATCH = 8


def log(message):
    print(f"[mlx worker {os.getpid()}] {message}", file=sys.stderr, flush=True)


def as_int(token):
    return int(token.item()) if hasattr(token, "item") else int(token)


class Turn:
    __slots__ = ("turn_id", "uid", "prompt_tokens", "audio_tokens", "completion_tokens", "detokenizer", "stops")

    def __init__(self, turn_id, uid, prompt_tokens, audio_tokens, detokenizer, stops):
        self.turn_id = turn_id
        self.uid = uid
        self.prompt_tokens = prompt_tokens
        self.audio_tokens = audio_tokens
        self.completion_tokens = 0
        self.detokenizer = detokenizer
        self.stops = StopScanner(stops)

    def usage(self):
        return {
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "audioTokens": self.audio_tokens,
        }


EMPTY_USAGE = {"promptTokens": 0, "completionTokens": 0, "audioTokens": 0}


class Worker:
    def __init__(self, writer, inbox):
        self.out = writer
        self.inbox = inbox
        self.model = None
        self.max_batch = DEFAULT_MAX_BATCH
        self.batch = None
        self.waiting = deque()
        self.active = {}
        # Sequences cancelled while mlx_vlm still prefilled them with others (remove() refused):
        # they run out in the batch, their tokens discarded, and hold their slot until then.
        self.leftovers = set()
        self.stopping = False
        self.peak_memory = None

    # -- lifecycle ------------------------------------------------------------

    def serve(self):
        """Runs until shutdown or end of input; returns the process exit code."""
        first = self.inbox.get()
        if first.get("type") != "load":
            self.out.send({"type": "error", "code": "bad_request", "message": "the first frame must be 'load'"})
            return 2
        if not self.load(first):
            return 2
        while not (self.stopping and not self.active and not self.waiting):
            self.handle_messages(block=not self.active and not self.waiting)
            self.admit()
            if self.active:
                self.step()
        return 0

    def load(self, message):
        model_id = message.get("model")
        self.max_batch = int(message.get("maxBatch") or os.environ.get("EARSHOT_MLX_MAX_BATCH") or DEFAULT_MAX_BATCH)
        if not model_id or self.max_batch < 1:
            self.out.send({"type": "error", "code": "bad_request", "message": "load needs a model and maxBatch >= 1"})
            return False
        try:
            path = fetch(model_id, lambda progress: self.out.send({"type": "loading", **progress}))
            self.out.send({"type": "loading", "stage": "load"})
            self.model = Model(path)
            probe = self.model.probe()
        except Exception as exc:  # every load failure is reported, then the worker exits
            code = classify_load_error(exc)
            log(f"load failed: {traceback.format_exc()}")
            self.out.send({"type": "error", "code": code, "message": f"{model_id}: {type(exc).__name__}: {exc}"})
            return False
        if "error" in probe.get("withAudio", {}):
            log(f"WARNING: turns with audio will fail: {probe['withAudio']['error']}")
        self.peak_memory = peak_memory_reader()
        self.out.send(
            {
                "type": "ready",
                "model": model_id,
                "capabilities": {"maxBatch": self.max_batch, "audio": self.model.hears_audio, "maxAudioMs": MAX_AUDIO_MS, "probe": probe},
            }
        )
        return True

    # -- control messages -------------------------------------------------------

    def handle_messages(self, block):
        try:
            message = self.inbox.get() if block else self.inbox.get_nowait()
        except queue.Empty:
            return
        while True:
            self.dispatch(message)
            try:
                message = self.inbox.get_nowait()
            except queue.Empty:
                return

    def dispatch(self, message):
        kind = message.get("type")
        if kind == "ping":
            self.out.send({"type": "pong", **({"peakMemoryBytes": int(self.peak_memory())} if self.peak_memory else {})})
        elif kind == "run":
            if self.stopping:
                for turn in message.get("turns", []):
                    self.fail(turn.get("turnId"), "shutting_down", "the worker is shutting down")
                return
            self.waiting.extend(message.get("turns", []))
        elif kind == "cancel":
            self.cancel(message.get("turnId"))
        elif kind == "shutdown":
            self.stopping = True
            for turn_id in [t.get("turnId") for t in self.waiting] + [t.turn_id for t in self.active.values()]:
                self.cancel(turn_id)
        elif kind == "fatal":
            raise SystemExit(f"input stream broken: {message.get('message')}")
        else:
            self.out.send({"type": "error", "code": "bad_request", "message": f"unknown frame type {kind!r}"})

    def cancel(self, turn_id):
        for waiting in self.waiting:
            if waiting.get("turnId") == turn_id:
                self.waiting.remove(waiting)
                self.out.send({"type": "done", "turnId": turn_id, "usage": EMPTY_USAGE, "finish": "cancelled"})
                return
        for uid, turn in self.active.items():
            if turn.turn_id == turn_id:
                self.drop(uid)
                del self.active[uid]
                self.out.send({"type": "done", "turnId": turn_id, "usage": turn.usage(), "finish": "cancelled"})
                return

    def drop(self, uid):
        if not self.batch.remove(uid):
            self.leftovers.add(uid)

    def fail(self, turn_id, code, message):
        self.out.send({"type": "error", "turnId": turn_id, "code": code, "message": message})

    # -- generation -------------------------------------------------------------

    def admit(self):
        while self.waiting and len(self.active) + len(self.leftovers) < self.max_batch:
            request = self.waiting.popleft()
            turn_id = request.get("turnId")
            try:
                self.insert(turn_id, request.get("messages", []), request.get("params") or {})
            except TurnError as exc:
                self.fail(turn_id, exc.code, str(exc))
            except Exception as exc:  # one bad turn must not take the others down
                log(f"turn {turn_id} failed: {traceback.format_exc()}")
                code = "out_of_memory" if is_out_of_memory(exc) else "engine_error"
                self.fail(turn_id, code, f"{type(exc).__name__}: {exc}")

    def insert(self, turn_id, messages, params):
        max_tokens = int(params.get("maxTokens") or 0)
        if max_tokens < 1:
            raise TurnError("bad_request", "params.maxTokens must be >= 1")
        ids, prompt_kwargs, audio_tokens = self.model.prepare(messages)
        if self.batch is None:
            self.batch = self.model.new_batch(params, self.max_batch)
        (uid,) = self.batch.insert([ids], max_tokens=[max_tokens], prompt_kwargs=[prompt_kwargs])
        self.active[uid] = Turn(turn_id, uid, len(ids), audio_tokens, self.model.detokenizer(), params.get("stop"))

    def step(self):
        try:
            _, responses = self.batch.next()
        except Exception as exc:  # the batch is lost; its turns fail, the worker goes on
            log(f"decode step failed: {traceback.format_exc()}")
            code = "out_of_memory" if is_out_of_memory(exc) else "engine_error"
            for turn in self.active.values():
                self.fail(turn.turn_id, code, f"{type(exc).__name__}: {exc}")
            self.active.clear()
            self.close_batch()
            return
        for response in responses:
            if response.uid in self.leftovers:
                if response.finish_reason is not None or self.batch.remove(response.uid):
                    self.leftovers.discard(response.uid)
                continue
            turn = self.active.get(response.uid)
            if turn is not None:
                self.on_token(turn, as_int(response.token), response.finish_reason)
        if not self.active:
            self.close_batch()

    def close_batch(self):
        if self.batch is not None:
            self.batch.close()
            self.batch = None
        self.leftovers.clear()

    def on_token(self, turn, token, finish):
        turn.completion_tokens += 1
        detokenizer = turn.detokenizer
        if finish == "stop":
            detokenizer.finalize()
        else:
            detokenizer.add_token(token, skip_special_token_ids=self.model.placeholder_ids)
            if finish is not None:
                detokenizer.finalize()
        text, stopped = turn.stops.feed(detokenizer.last_segment)
        if finish is not None and not stopped:
            text += turn.stops.flush()
        if text:
            self.out.send({"type": "delta", "turnId": turn.turn_id, "text": text})
        if stopped:
            if finish is None:
                self.drop(turn.uid)
            finish = "stop"
        if finish is not None:
            del self.active[turn.uid]
            self.out.send({"type": "done", "turnId": turn.turn_id, "usage": turn.usage(), "finish": finish})


def read_loop(stream, inbox):
    try:
        while True:
            message = read_frame(stream)
            if message is None:
                inbox.put({"type": "shutdown"})
                return
            inbox.put(message)
    except Exception as exc:  # a broken stream ends the worker
        inbox.put({"type": "fatal", "message": f"{type(exc).__name__}: {exc}"})


def main():
    # Frames own the real stdout; anything printed (mlx_vlm warnings, download progress)
    # goes to stderr instead of corrupting the stream.
    frames_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    inbox = queue.Queue()
    # Unbuffered: a daemon thread blocked in a buffered read aborts interpreter shutdown.
    frames_in = os.fdopen(os.dup(0), "rb", buffering=0)
    threading.Thread(target=read_loop, args=(frames_in, inbox), daemon=True).start()
    return Worker(FrameWriter(frames_out), inbox).serve()


if __name__ == "__main__":
    sys.exit(main())
