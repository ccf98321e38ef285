"""The loaded model and the mlx_vlm calls the worker makes on it: loading, a batch generator
per batch, and the prompt of a turn (Gemma 4's chat template, one BOS, the audio as embeddings).
conversation.py builds the chat it renders."""

from conversation import MAX_AUDIO_MS, SAMPLE_RATE, TurnError, build_conversation, control_string_cleaner

# Gemma 4 ends a reply with <turn|> (id 106) as well as EOS; not every config lists it.
END_OF_TURN = "<turn|>"
# Processor outputs that get_input_embeddings consumes for audio; nothing after it needs them.
AUDIO_FEATURE_KEYS = ("input_features", "input_features_mask")
# Placeholder tokens the model may echo; they are never text for the user.
PLACEHOLDER_CONFIG_IDS = (
    "audio_token_id",
    "boa_token_id",
    "eoa_token_id",
    "image_token_id",
    "boi_token_id",
    "eoi_token_id",
    "video_token_id",
)
# Gemma 4's markup, removed from message text even when a tokenizer does not list it as added.
GEMMA_CONTROL_STRINGS = (
    "<bos>", "<eos>", "<pad>", "<|turn>", "<turn|>", "<|image>", "<image|>", "<|image|>",
    "<|audio>", "<audio|>", "<|audio|>", "<|video|>", "<|channel>", "<channel|>", "<|think|>",
)
# Arrays of prepare_inputs that run along the prompt tokens; cut together when a BOS is dropped.
SEQUENCE_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "token_type_ids")


def control_strings(tokenizer):
    """Every markup token the tokenizer knows (added and special tokens shaped like <...>)."""
    added = getattr(tokenizer, "get_added_vocab", None)
    names = set(added() if callable(added) else ())
    names.update(getattr(tokenizer, "all_special_tokens", None) or ())
    names.update(GEMMA_CONTROL_STRINGS)
    return [n for n in names if isinstance(n, str) and len(n) > 2 and n[0] == "<" and n[-1] == ">" and not any(c.isspace() for c in n)]


def peak_memory_reader():
    """mx.get_peak_memory (mx.metal.get_peak_memory before MLX 0.26), or None without MLX."""
    try:
        import mlx.core as mx
    except ImportError:
        return None
    return getattr(mx, "get_peak_memory", None) or getattr(getattr(mx, "metal", None), "get_peak_memory", None)


def single_bos(inputs, bos_id):
    """Drops extra leading BOS tokens. The Gemma 4 template starts with BOS, and mlx_vlm's
    prepare_inputs passes add_special_tokens=False only to the tokenizer of text-only turns:
    the Gemma 4 processor's __call__ has no such parameter, so it is dropped and the
    tokenizer adds a second BOS to every turn with audio."""
    ids = inputs["input_ids"]
    row = ids[0].tolist()
    leading = 0
    while bos_id is not None and leading < len(row) and row[leading] == bos_id:
        leading += 1
    if leading <= 1:
        return inputs
    length = ids.shape[1]
    cut = leading - 1
    return {k: v[:, cut:] if k in SEQUENCE_KEYS and v is not None and v.shape[-1] == length else v for k, v in inputs.items()}


class Model:
    """The loaded model and the mlx_vlm calls made on it."""

    def __init__(self, path):
        # Imported here, after stdout was moved to stderr: nothing mlx_vlm prints may
        # land in the frame stream.
        from mlx_vlm.generate import BatchGenerator
        from mlx_vlm.prompt_utils import get_chat_template
        from mlx_vlm.sample_utils import make_sampler
        from mlx_vlm.tokenizer_utils import make_streaming_detokenizer
        from mlx_vlm.utils import load, prepare_inputs

        self._batch_generator = BatchGenerator
        self._get_chat_template = get_chat_template
        self._make_sampler = make_sampler
        self._make_detokenizer = make_streaming_detokenizer
        self._prepare_inputs = prepare_inputs

        self.model, self.processor = load(path)
        self.tokenizer = self.processor.tokenizer
        config = self.model.config
        self.audio_token_id = getattr(config, "audio_token_id", None)
        self.hears_audio = getattr(self.model, "audio_tower", None) is not None
        self.eos_ids = self._eos_ids(config)
        self.stop_ids = set(self.eos_ids)
        self.stop_ids.update(getattr(self.processor, "additional_eos_token_ids", None) or ())
        end_of_turn = self.tokenizer.convert_tokens_to_ids(END_OF_TURN)
        if isinstance(end_of_turn, int) and end_of_turn != getattr(self.tokenizer, "unk_token_id", None):
            self.stop_ids.add(end_of_turn)
        self.placeholder_ids = [
            value for value in (getattr(config, name, None) for name in PLACEHOLDER_CONFIG_IDS) if value is not None
        ]
        self.bos_id = getattr(self.tokenizer, "bos_token_id", None)
        self.clean = control_string_cleaner(control_strings(self.tokenizer))

    @staticmethod
    def _eos_ids(config):
        eos = getattr(config, "eos_token_id", None)
        if eos is None:
            return []
        return list(eos) if isinstance(eos, (list, tuple)) else [eos]

    def new_batch(self, params, max_batch):
        # BatchGenerator adds its stop tokens to the shared stopping criteria: start clean.
        self.tokenizer.stopping_criteria.reset(self.eos_ids)
        prefill = min(8, max_batch)
        temperature = float(params.get("temperature") or 0.0)
        return self._batch_generator(
            self.model.language_model,
            self.processor,
            stop_tokens=self.stop_ids,
            # No sampler at temperature 0: BatchGenerator then takes its fused greedy path, which
            # a sampler (even a greedy one) or logprobs turn off. Nothing here reads logprobs.
            sampler=self._make_sampler(temp=temperature, top_p=float(params.get("topP") or 0.0)) if temperature > 0 else None,
            compute_logprobs=False,
            # A prefill is admitted only while completion_batch_size - decoding >= prefill_batch_size;
            # the worker itself caps sequences at max_batch, so give the generator that headroom.
            completion_batch_size=max_batch + prefill,
            prefill_batch_size=prefill,
        )

    def prepare(self, messages):
        """Returns (prompt token ids, prompt_kwargs for BatchGenerator.insert, audio token count)."""
        chat, clip = build_conversation(messages, MAX_AUDIO_MS, self.clean)
        if clip is not None and not self.hears_audio:
            raise TurnError("unsupported", "this model does not accept audio")
        # The tokenizer's template is the call mlx_vlm's own apply_chat_template ends in; going
        # through it directly keeps text and audio items in the order they came.
        prompt = self._get_chat_template(self.tokenizer, chat, add_generation_prompt=True)
        inputs = self._prepare_inputs(
            self.processor,
            audio=[clip] if clip is not None else None,
            prompts=prompt,
            image_token_index=getattr(self.model.config, "image_token_index", None),
            add_special_tokens=False,
        )
        inputs = single_bos(inputs, self.bos_id)
        input_ids = inputs["input_ids"]
        ids = input_ids[0].tolist()
        audio_tokens = ids.count(self.audio_token_id) if self.audio_token_id is not None else 0
        if clip is not None and audio_tokens == 0:
            # get_chat_template falls back to a plain "User: ..." prompt when the tokenizer has no
            # chat template; its audio marker is not the model's, so the clip would be dropped.
            raise TurnError(
                "no_audio_tokens",
                "the prompt holds no audio tokens, so the model would not hear the audio "
                "(does the model's tokenizer have a chat template? mlx_vlm falls back to a plain prompt without one)",
            )
        data = {k: v for k, v in inputs.items() if k not in ("input_ids", "pixel_values", "attention_mask")}
        embedded = self.model.get_input_embeddings(
            input_ids, inputs.get("pixel_values"), mask=inputs.get("attention_mask"), **data
        )
        # The audio features are in the embeddings now. Passed on, they would reach BatchGenerator's
        # prefill merge, which concatenates them as they are: two clips of different lengths
        # admitted together would fail the whole batch (mlx_vlm/generate/ar.py,
        # _merge_prefill_prompt_kwargs pads only sequence-aligned keys).
        kept = {k: v for k, v in data.items() if k not in AUDIO_FEATURE_KEYS}
        prompt_kwargs = {**kept, **{k: v for k, v in embedded.to_dict().items() if v is not None}}
        return ids, prompt_kwargs, audio_tokens

    def detokenizer(self):
        return self._make_detokenizer(self.processor)

    def probe(self):
        """The prompts of a one-word typed turn and of a 1 s clip, as the model would see them."""

        def bos(ids):
            return {"bos": ids.count(self.bos_id), "bosFirst": bool(ids) and ids[0] == self.bos_id}

        ids, _, _ = self.prepare([{"role": "user", "parts": [{"type": "text", "text": "hello"}]}])
        result = {"textOnly": bos(ids)}
        if self.hears_audio:
            second = bytes(4 * SAMPLE_RATE)
            try:
                ids, _, audio_tokens = self.prepare([{"role": "user", "parts": [{"type": "text", "text": "hello"}, {"type": "audio", "pcm": second}]}])
                result["withAudio"] = {**bos(ids), "audioTokensPerSecond": audio_tokens}
            except TurnError as exc:
                result["withAudio"] = {"error": str(exc)}
        return result
