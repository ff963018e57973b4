"""Partial LoRA (``training.lora.layers: N``): adapters on the top N decoder layers only, trained and
letter-scored from cached hidden states of the frozen layers below.

With adapters on layers L-N .. L-1 only, the layers 0 .. L-N-1 (the *bottom*) are frozen and see no
adapter, so the hidden states that leave them -- the states entering layer L-N -- depend on the token
ids alone. They are computed once per token sequence under ``no_grad`` (:func:`bottom_states`), kept as
float32 ``[length, hidden]`` in a :class:`StateStore` under the study's cache (keyed by the model, N
and the token ids; a training row is its whole sequence, prompt and answer), and every training step
and every letter score afterwards runs only the top N layers, the final norm and the output layer.

How the top runs: :func:`top_only` cuts the decoder's layer list to its top N for the length of a
``with`` block (with ``config.num_hidden_layers`` and per-layer config lists such as
``config.layer_types`` cut to match, and no key/value cache), and the model is called with the cached
states as ``inputs_embeds`` and explicit ``position_ids`` 0 .. length-1. So the top layers run with
HF's own causal / sliding-window masks and rotary embeddings, each layer with its own attention
type, and the model is whole again outside the block (the base model is shared between training
runs). The result is full LoRA restricted to those layers: the same loss, gradients and letter
log-probabilities (``tests/test_partial.py``, Llama, Qwen2 and Gemma-3 to 1e-5), as long as the
frozen bottom has no dropout of its own (``attention_dropout`` is 0 in these families; the cached
states are the bottom's eval-mode output).

* Training: :class:`PartialTrainer` is :class:`~relalign.lora.WeightedTrainer` (the same loss,
  batch layout, scheduler, checkpoints) whose every forward runs inside :func:`top_only`; a
  :class:`CachedRows` dataset and :class:`CachedStatesCollator` feed it the states.
* Scoring: :meth:`PartialLora.letter_logprobs` runs :func:`relalign.scoring.score_prompts` (its
  batching, letter ids and output layer) on a stand-in model whose body is the top on cached states.
* The adapter is an ordinary peft adapter (``LoraConfig(layers_to_transform=...)``): loaded onto the
  full base model it generates and scores like any other.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .cache import atomic_write, digest
from .lora import WeightedCollator, WeightedTrainer
from .progress import Bar
from .prompts import Prompt
from .scoring import _body, score_prompts

# Config lists with one entry per decoder layer, cut with the layers (Qwen2, Gemma-3: each
# layer's attention type, read by the decoder's loop as ``layer_types[i]``).
PER_LAYER_CONFIG = ("layer_types",)


def decoder(model):
    """The decoder (embeddings, ``layers``, final ``norm``) of a causal LM, peft-wrapped or not."""
    body = _body(model)
    if not (hasattr(body, "layers") and hasattr(body, "norm")):
        raise ValueError(f"training.lora.layers: {type(body).__name__} has no decoder layer list and final norm "
                         "to cut (Llama, Mistral, Qwen2 and Gemma-style models have)")
    return body


def top_layer_indices(model, n: int) -> list[int]:
    """Indices of the top ``n`` decoder layers; a clear error where the model has fewer."""
    total = len(decoder(model).layers)
    if not 1 <= n <= total:
        raise ValueError(f"training.lora.layers is {n}, but the model has {total} decoder layers")
    return list(range(total - n, total))


@contextmanager
def only_layers(model, start: int, stop: int):
    """Within the block, the model's decoder runs only its layers ``start .. stop-1`` (config lists per
    layer cut to match, no key/value cache: its layer indices would not match); restored on exit."""
    body = decoder(model)
    config = body.config
    saved = {"num_hidden_layers": config.num_hidden_layers, "use_cache": config.use_cache,
             **{k: getattr(config, k) for k in PER_LAYER_CONFIG if getattr(config, k, None) is not None}}
    layers = body.layers
    body.layers = layers[start:stop]
    config.num_hidden_layers = stop - start
    config.use_cache = False
    for k in PER_LAYER_CONFIG:
        if k in saved:
            setattr(config, k, list(saved[k])[start:stop])
    try:
        yield
    finally:
        body.layers = layers
        for k, v in saved.items():
            setattr(config, k, v)


@contextmanager
def top_only(model, n: int):
    """Within the block, the model runs only its top ``n`` decoder layers (fed their input states as
    ``inputs_embeds``)."""
    indices = top_layer_indices(model, n)
    with only_layers(model, indices[0], indices[-1] + 1):
        yield


def length_batches(lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Positions grouped by similar length, each group's padded size (count x longest) at most
    ``max_tokens`` (a longer sequence goes alone)."""
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if batches and (len(batches[-1]) + 1) * lengths[i] <= max_tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def padded_states(states: Sequence[np.ndarray], width: int) -> torch.Tensor:
    """``[len(states), width, hidden]`` float32, each sequence's states from the left, zeros after
    (right padding: causal attention never lets a real token see them)."""
    out = np.zeros((len(states), width, states[0].shape[1]), np.float32)
    for i, s in enumerate(states):
        out[i, : len(s)] = s
    return torch.from_numpy(out)


def positions(batch: int, width: int) -> torch.Tensor:
    """Explicit ``position_ids`` 0 .. width-1 for every row of a right-padded batch."""
    return torch.arange(width).expand(batch, width)


@torch.no_grad()
def bottom_states(model, sequences: Sequence[Sequence[int]], n: int, max_tokens: int, pad_id: int) -> list[np.ndarray]:
    """The hidden states entering the top ``n`` decoder layers, float32 ``[length, hidden]`` per token
    sequence: the model runs its bottom layers alone, in eval mode, in right-padded batches of similar
    length, and the final norm's input is kept (for ``n`` = every layer: the embeddings, scaled as the
    model scales them)."""
    body = decoder(model)
    first = top_layer_indices(model, n)[0]
    device = next(model.parameters()).device
    seen: list[torch.Tensor] = []
    hook = body.norm.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    was_training = body.training
    body.eval()
    out: list[np.ndarray] = [np.empty(0)] * len(sequences)
    try:
        with only_layers(model, 0, first), Bar(total=len(sequences), desc="bottom states", unit="sequence") as bar:
            for batch in length_batches([len(s) for s in sequences], max_tokens):
                width = max(len(sequences[i]) for i in batch)
                ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
                att = torch.zeros((len(batch), width), dtype=torch.long)
                for r, i in enumerate(batch):
                    ids[r, : len(sequences[i])] = torch.tensor(list(sequences[i]))
                    att[r, : len(sequences[i])] = 1
                body(input_ids=ids.to(device), attention_mask=att.to(device),
                     position_ids=positions(len(batch), width).to(device))
                hidden = seen.pop().float().cpu().numpy()
                for r, i in enumerate(batch):
                    out[i] = hidden[r, : len(sequences[i])].copy()
                bar.update(len(batch))
    finally:
        hook.remove()
        body.train(was_training)
    return out


def sequence_key(ids: Sequence[int]) -> str:
    """A token sequence's key in a :class:`StateStore`."""
    return digest([int(t) for t in ids])


class StateStore:
    """Hidden states of token sequences (float32 ``[length, hidden]`` each) in append-only shards under
    ``folder``: ``shard-*.npy`` holds a shard's states end to end, ``shard-*.json`` (written last, so a
    half-written shard is never read) its keys and offsets. States are read memory-mapped: every
    caller gets views of the one copy the operating system caches."""

    def __init__(self, folder: str | Path, shard_tokens: int = 1 << 15):
        self.folder = Path(folder)
        self.shard_tokens = shard_tokens  # tokens per new shard: bounds the memory of a computation
        self._index: dict[str, tuple[str, int, int]] = {}
        self._shards: dict[str, np.ndarray] = {}
        for f in sorted(self.folder.glob("shard-*.json")):
            self._add(f.stem, json.loads(f.read_text()))

    def _add(self, name: str, meta: dict) -> None:
        offsets = meta["offsets"]
        for k, a, b in zip(meta["keys"], offsets[:-1], offsets[1:]):
            self._index[k] = (name, a, b)

    def _view(self, key: str) -> np.ndarray:
        name, a, b = self._index[key]
        if name not in self._shards:
            self._shards[name] = np.load(self.folder / f"{name}.npy", mmap_mode="r")
        return self._shards[name][a:b]

    def _write(self, keys: list[str], states: list[np.ndarray]) -> None:
        offsets = np.cumsum([0] + [len(s) for s in states]).tolist()
        name = f"shard-{digest(keys)[:24]}"
        atomic_write(self.folder / f"{name}.npy", lambda p: np.save(p, np.concatenate(states).astype(np.float32)))
        meta = {"keys": keys, "offsets": offsets}
        atomic_write(self.folder / f"{name}.json", lambda p: p.write_text(json.dumps(meta)))
        self._add(name, meta)

    def _chunks(self, missing: list[int], lengths: Sequence[int]) -> list[list[int]]:
        """Missing positions, shortest first, in groups of at most ``shard_tokens`` tokens."""
        chunks: list[list[int]] = [[]]
        size = 0
        for i in sorted(missing, key=lambda i: lengths[i]):
            if chunks[-1] and size + lengths[i] > self.shard_tokens:
                chunks.append([])
                size = 0
            chunks[-1].append(i)
            size += lengths[i]
        return [c for c in chunks if c]

    def get(self, sequences: Sequence[Sequence[int]],
            compute: Callable[[list[Sequence[int]]], list[np.ndarray]]) -> list[np.ndarray]:
        """The states of every sequence, in order; ``compute(sequences)`` makes those not stored yet
        (each new key once), which are stored a shard at a time."""
        keys = [sequence_key(s) for s in sequences]
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k not in self._index:
                first.setdefault(k, i)
        for chunk in self._chunks(list(first.values()), [len(s) for s in sequences]):
            self._write([keys[i] for i in chunk], compute([sequences[i] for i in chunk]))
        return [self._view(k) for k in keys]


class CachedRows(torch.utils.data.Dataset):
    """Training rows (:func:`relalign.lora.encode_rows`), each with its sequence's bottom states."""

    def __init__(self, rows: list[dict], states: list[np.ndarray]):
        if len(rows) != len(states):
            raise ValueError(f"{len(rows)} rows but {len(states)} state arrays")
        self.rows, self.states = rows, states

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return {**self.rows[i], "states": self.states[i]}


@dataclass
class CachedStatesCollator(WeightedCollator):
    """:class:`~relalign.lora.WeightedCollator`'s batch with the rows' bottom states as ``inputs_embeds``
    (in the model's ``dtype``) in place of their token ids, and explicit ``position_ids``."""

    dtype: torch.dtype = torch.float32

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        batch = super().__call__(rows)
        size, width = batch.pop("input_ids").shape
        batch["inputs_embeds"] = padded_states([r["states"] for r in rows], width).to(self.dtype)
        batch["position_ids"] = positions(size, width)
        return batch


class PartialTrainer(WeightedTrainer):
    """:class:`~relalign.lora.WeightedTrainer` whose every loss runs only the top ``layers`` decoder
    layers, on the batch's cached bottom states: the same loss, computed by the same code."""

    def __init__(self, *args, layers: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.layers = layers

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        with top_only(self.accelerator.unwrap_model(model), self.layers):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


class _TopOnCachedStates:
    """Stands in for the model in :func:`~relalign.scoring.score_prompts`: its decoder looks each padded
    row's token ids up in ``states`` and runs the top ``layers`` layers on them; its output layer and
    config are the model's."""

    def __init__(self, model, layers: int, states: dict[tuple[int, ...], np.ndarray]):
        self.model, self.layers, self.states = model, layers, states
        self.config = model.config

    def parameters(self):
        return self.model.parameters()

    def get_output_embeddings(self):
        return self.model.get_output_embeddings()

    def get_decoder(self):
        return self._decoder

    def _decoder(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        size, width = input_ids.shape
        rows = [self.states[tuple(input_ids[r, :n].tolist())] for r, n in enumerate(attention_mask.sum(1).tolist())]
        dtype = next(self.model.parameters()).dtype
        with top_only(self.model, self.layers):
            return decoder(self.model)(inputs_embeds=padded_states(rows, width).to(input_ids.device, dtype),
                                       attention_mask=attention_mask,
                                       position_ids=positions(size, width).to(input_ids.device))


class PartialLora:
    """Everything ``training.lora.layers: N`` changes in a LoRA run: which layers get adapters, the
    training set and collator, the trainer, and letter scoring -- all on bottom states cached in
    ``folder/top-N``."""

    def __init__(self, layers: int, folder: str | Path, batch_tokens: int):
        self.layers = layers
        self.folder = Path(folder) / f"top-{layers}"
        self.batch_tokens = batch_tokens

    @cached_property
    def store(self) -> StateStore:
        return StateStore(self.folder)

    def layer_indices(self, model) -> list[int]:
        """The decoder layers that get adapters (``LoraConfig.layers_to_transform``)."""
        return top_layer_indices(model, self.layers)

    def states(self, model, tokenizer, sequences: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Bottom states of token sequences, from the store or computed by ``model`` (its bottom carries
        no adapter, so a base model and a fine-tuned one give the same)."""
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        return self.store.get(sequences, lambda seqs: bottom_states(model, seqs, self.layers, self.batch_tokens, pad_id))

    def dataset(self, model, tokenizer, rows: list[dict]) -> CachedRows:
        """The training rows with their sequences' bottom states."""
        return CachedRows(rows, self.states(model, tokenizer, [r["input_ids"] for r in rows]))

    def collator(self, model, tokenizer) -> CachedStatesCollator:
        return CachedStatesCollator(tokenizer.pad_token_id, dtype=next(model.parameters()).dtype)

    def trainer(self, **kwargs) -> PartialTrainer:
        return PartialTrainer(layers=self.layers, **kwargs)

    def letter_logprobs(self, model, tokenizer, prompts: Sequence[Prompt], desc: str = "") -> np.ndarray:
        """Log-probabilities of each prompt's option letters at its last position ``[n, m]``, from the
        prompts' cached bottom states (:func:`~relalign.scoring.score_prompts` on the top alone)."""
        ids = tokenizer([p.text for p in prompts], add_special_tokens=True)["input_ids"]
        lookup = {tuple(s): st for s, st in zip(ids, self.states(model, tokenizer, ids))}
        sp = score_prompts(_TopOnCachedStates(model, self.layers, lookup), tokenizer, prompts, keep_hidden=False,
                           option_logprobs=False, max_tokens_per_batch=self.batch_tokens, shared_prefix=False,
                           progress=desc)
        return sp.letter_logprob
