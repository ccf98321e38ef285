"""Turns Earshot messages into a Gemma 4 chat plus the one audio clip the model hears.

History audio: only the newest message's audio reaches the model as audio. Audio parts
of earlier messages are replaced, in place, by a text note such as
"[voice message, 2.4 s]"; the session can put a transcript beside it as a text part, and
the model's own earlier replies are text already. Why not every clip:
- mlx_vlm.utils.prepare_inputs keeps only the first clip of a prompt;
- passing several clips to the processor ourselves pads them to the longest one, and
  Gemma 4's get_input_embeddings scatters the padded audio frames into the placeholders
  in order, so every clip after a shorter one would be misaligned;
- each second of history audio costs 25 prompt tokens on every later turn.
Several audio parts in the newest message (utterances the scheduler coalesced) are
joined in order, with JOIN_GAP_S of silence between them, into one clip placed where the
first of them was; the joined clip must fit the model's 30 s limit.

Message shapes follow mlx_vlm.prompt_utils for gemma4 (MessageFormat.LIST_WITH_IMAGE_TYPE_TEXT):
user content is a list of {"type": "text", "text"} / {"type": "audio"} items, in the order
the parts came; system and assistant content is a plain string.
"""

import numpy as np

SAMPLE_RATE = 16_000
MAX_AUDIO_MS = 30_000
JOIN_GAP_S = 0.2
ROLES = ("system", "user", "assistant")


class TurnError(Exception):
    """A problem with one turn's input: reported for that turn, the worker goes on."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def pcm_to_samples(pcm):
    if not isinstance(pcm, (bytes, bytearray, memoryview)) or len(pcm) % 4:
        raise TurnError("bad_request", "audio pcm must be float32 little-endian bytes")
    return np.frombuffer(pcm, dtype="<f4")


def history_note(samples):
    return f"[voice message, {len(samples) / SAMPLE_RATE:.1f} s]"


def join_clips(clips):
    if len(clips) == 1:
        return clips[0]
    gap = np.zeros(int(JOIN_GAP_S * SAMPLE_RATE), dtype=np.float32)
    pieces = []
    for i, clip in enumerate(clips):
        if i:
            pieces.append(gap)
        pieces.append(clip)
    return np.concatenate(pieces)


def build_conversation(messages, max_audio_ms=MAX_AUDIO_MS):
    """Returns (chat messages for the chat template, clip as float32 array or None)."""
    if not messages:
        raise TurnError("bad_request", "a turn needs at least one message")
    if messages[-1].get("role") != "user":
        raise TurnError("bad_request", "the last message of a turn must be the user's")
    chat = []
    clips = []
    newest = len(messages) - 1
    for index, message in enumerate(messages):
        role = message.get("role")
        if role not in ROLES:
            raise TurnError("bad_request", f"unknown role {role!r}")
        items = []
        for part in message.get("parts", []):
            kind = part.get("type")
            if kind == "text":
                items.append({"type": "text", "text": str(part.get("text", ""))})
            elif kind == "audio":
                samples = pcm_to_samples(part.get("pcm"))
                if index == newest:
                    if not clips:
                        items.append({"type": "audio"})
                    clips.append(samples)
                else:
                    items.append({"type": "text", "text": history_note(samples)})
            else:
                raise TurnError("unsupported", f"part type {kind!r} is not supported")
        if role == "user":
            chat.append({"role": role, "content": items})
        else:
            chat.append({"role": role, "content": " ".join(item["text"] for item in items)})
    clip = join_clips(clips) if clips else None
    if clip is not None and len(clip) * 1000 > max_audio_ms * SAMPLE_RATE:
        raise TurnError(
            "audio_too_long",
            f"audio is {len(clip) / SAMPLE_RATE:.1f} s; the model accepts at most {max_audio_ms / 1000:.0f} s",
        )
    return chat, clip
