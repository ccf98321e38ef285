"""Turns Earshot messages into a Gemma 4 chat plus the one audio clip the model hears.

History audio: only the newest message carries audio. The pool (server/engines/history.ts)
has already replaced every earlier clip by a text note such as "[voice message, 2.4 s]",
the same note the `openai` engine sends; an earlier message with audio is refused here.
Why not every clip:
- mlx_vlm.utils.prepare_inputs keeps only the first clip of a prompt;
- passing several clips to the processor ourselves pads them to the longest one, and
  Gemma 4's get_input_embeddings scatters the padded audio frames into the placeholders
  in order, so every clip after a shorter one would be misaligned;
- each second of history audio costs 25 prompt tokens on every later turn.
Several audio parts in the newest message (utterances the scheduler coalesced) are
joined in order, with JOIN_GAP_S of silence between them, into one clip placed where the
first of them was; the joined clip must fit the model's 30 s limit.

What the Gemma 4 chat template does to the messages, and what is done about it here:
- it trims each text item and glues items with no separator: adjacent text parts are
  joined here with a newline into one item, so a note never runs into the next words;
- it renders a system message only as the first message: every system text is merged,
  in order, into one system message at the top;
- control strings in text (<|turn>, <bos>, <|audio|>, ...) would be read as markup, and a
  literal <|audio|> makes the processor run out of clips (StopIteration): the caller passes
  a `clean` function that removes them from every text.

Message shapes follow mlx_vlm.prompt_utils for gemma4 (MessageFormat.LIST_WITH_IMAGE_TYPE_TEXT):
user content is a list of {"type": "text", "text"} / {"type": "audio"} items, in the order
the parts came; system and assistant content is a plain string.
"""

import re

import numpy as np

SAMPLE_RATE = 16_000
MAX_AUDIO_MS = 30_000
JOIN_GAP_S = 0.2
ROLES = ("system", "user", "assistant")
TEXT_JOINER = "\n"


class TurnError(Exception):
    """A problem with one turn's input: reported for that turn, the worker goes on."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def control_string_cleaner(control_strings):
    """A function that removes every given control string from a text, also ones that
    only appear once another was removed ("<|au<bos>dio|>")."""
    strings = sorted({s for s in control_strings if s}, key=len, reverse=True)
    if not strings:
        return lambda text: text
    pattern = re.compile("|".join(re.escape(s) for s in strings))

    def clean(text):
        while True:
            cleaned = pattern.sub("", text)
            if cleaned == text:
                return cleaned
            text = cleaned

    return clean


def pcm_to_samples(pcm):
    if not isinstance(pcm, (bytes, bytearray, memoryview)) or len(pcm) % 4:
        raise TurnError("bad_request", "audio pcm must be float32 little-endian bytes")
    return np.frombuffer(pcm, dtype="<f4")


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


def _items(message, newest, clips, clean):
    """A message's parts as template items: adjacent texts joined, audio kept in place."""
    items = []
    for part in message.get("parts", []):
        kind = part.get("type")
        if kind == "text":
            text = clean(str(part.get("text", "")))
            if not text.strip():
                continue
            if items and items[-1]["type"] == "text":
                items[-1]["text"] += TEXT_JOINER + text
            else:
                items.append({"type": "text", "text": text})
        elif kind == "audio":
            if not newest:
                raise TurnError("bad_request", "only the newest message may carry audio; earlier clips travel as text notes")
            if not clips:
                items.append({"type": "audio"})
            clips.append(pcm_to_samples(part.get("pcm")))
        else:
            raise TurnError("unsupported", f"part type {kind!r} is not supported")
    return items


def build_conversation(messages, max_audio_ms=MAX_AUDIO_MS, clean=lambda text: text):
    """Returns (chat messages for the chat template, clip as float32 array or None)."""
    if not messages:
        raise TurnError("bad_request", "a turn needs at least one message")
    if messages[-1].get("role") != "user":
        raise TurnError("bad_request", "the last message of a turn must be the user's")
    system = []
    chat = []
    clips = []
    newest = len(messages) - 1
    for index, message in enumerate(messages):
        role = message.get("role")
        if role not in ROLES:
            raise TurnError("bad_request", f"unknown role {role!r}")
        items = _items(message, index == newest, clips, clean)
        if role == "user":
            chat.append({"role": role, "content": items})
        else:
            text = TEXT_JOINER.join(item["text"] for item in items)
            if role == "system":
                system.append(text)
            elif text:
                chat.append({"role": role, "content": text})
    system_text = TEXT_JOINER.join(s for s in system if s)
    if system_text:
        chat.insert(0, {"role": "system", "content": system_text})
    clip = join_clips(clips) if clips else None
    if clip is not None and len(clip) * 1000 > max_audio_ms * SAMPLE_RATE:
        raise TurnError(
            "audio_too_long",
            f"audio is {len(clip) / SAMPLE_RATE:.1f} s; the model accepts at most {max_audio_ms / 1000:.0f} s",
        )
    return chat, clip
