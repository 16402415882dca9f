"""A BERT encoder forward pass in float32 NumPy, for sentence embeddings without torch.

Inference only (no dropout), absolute position embeddings, one token type. The weights are the
tensors of a Hugging Face `BertModel` checkpoint (names as in `model.safetensors`, with or without
a `bert.` prefix); they are rearranged once at load time so that every projection is one plain
GEMM: the query, key and value projections are fused into one (hidden, 3·hidden) matrix and the
1/√head_dim attention scale is folded into the query weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

_F32 = np.float32


@dataclass(frozen=True)
class BertConfig:
    """The fields of a Hugging Face BERT `config.json` that the forward pass uses."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    layer_norm_eps: float

    @classmethod
    def from_json(cls, config: Mapping[str, Any]) -> BertConfig:
        """Validate a parsed `config.json`; raises ValueError naming the unsupported field."""
        model_type = config.get("model_type", "bert")
        if model_type != "bert":
            raise ValueError(f"model_type is {model_type!r}; only 'bert' models are supported")
        act = config.get("hidden_act", "gelu")
        if act != "gelu":
            raise ValueError(f"hidden_act is {act!r}; only 'gelu' (the erf form) is supported")
        pos = config.get("position_embedding_type", "absolute")
        if pos != "absolute":
            raise ValueError(f"position_embedding_type is {pos!r}; only 'absolute' is supported")
        try:
            made = cls(
                vocab_size=int(config["vocab_size"]),
                hidden_size=int(config["hidden_size"]),
                num_hidden_layers=int(config["num_hidden_layers"]),
                num_attention_heads=int(config["num_attention_heads"]),
                intermediate_size=int(config["intermediate_size"]),
                max_position_embeddings=int(config["max_position_embeddings"]),
                layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
            )
        except KeyError as err:
            raise ValueError(f"missing field {err.args[0]!r}") from None
        if made.hidden_size % made.num_attention_heads:
            raise ValueError("hidden_size is not a multiple of num_attention_heads")
        return made


@dataclass(frozen=True)
class _Layer:
    qkv_w: np.ndarray  # (hidden, 3·hidden); query columns pre-scaled by 1/√head_dim
    qkv_b: np.ndarray
    attn_out_w: np.ndarray  # (hidden, hidden)
    attn_out_b: np.ndarray
    attn_ln_g: np.ndarray
    attn_ln_b: np.ndarray
    ffn_in_w: np.ndarray  # (hidden, intermediate)
    ffn_in_b: np.ndarray
    ffn_out_w: np.ndarray  # (intermediate, hidden)
    ffn_out_b: np.ndarray
    ffn_ln_g: np.ndarray
    ffn_ln_b: np.ndarray


class BertEncoder:
    """`BertModel` without the pooler: token ids and attention mask in, last hidden states out."""

    def __init__(self, config: BertConfig, tensors: Mapping[str, np.ndarray]) -> None:
        """`tensors`: checkpoint name → array. Raises ValueError naming a missing or misshapen tensor."""
        self.config = config
        get = _TensorReader(tensors)
        h, inter = config.hidden_size, config.intermediate_size
        self.word_embeddings = get("embeddings.word_embeddings.weight", (config.vocab_size, h))
        self.position_embeddings = get(
            "embeddings.position_embeddings.weight", (config.max_position_embeddings, h)
        )
        # Only token type 0 is used (single sentences), so its row is added once.
        token_types = get.array("embeddings.token_type_embeddings.weight")
        if token_types.ndim != 2 or token_types.shape[1] != h:
            raise ValueError(f"embeddings.token_type_embeddings.weight has shape {token_types.shape}")
        self.position_embeddings = self.position_embeddings + token_types[0]
        self.embed_ln_g = get("embeddings.LayerNorm.weight", (h,))
        self.embed_ln_b = get("embeddings.LayerNorm.bias", (h,))

        scale = _F32(1.0 / math.sqrt(h // config.num_attention_heads))
        self.layers = []
        for i in range(config.num_hidden_layers):
            p = f"encoder.layer.{i}."
            q_w = get(p + "attention.self.query.weight", (h, h)) * scale
            q_b = get(p + "attention.self.query.bias", (h,)) * scale
            k_w = get(p + "attention.self.key.weight", (h, h))
            k_b = get(p + "attention.self.key.bias", (h,))
            v_w = get(p + "attention.self.value.weight", (h, h))
            v_b = get(p + "attention.self.value.bias", (h,))
            self.layers.append(
                _Layer(
                    # torch Linear stores (out, in); transposed copies make x @ W a plain GEMM.
                    qkv_w=np.ascontiguousarray(np.concatenate([q_w, k_w, v_w], axis=0).T),
                    qkv_b=np.concatenate([q_b, k_b, v_b]),
                    attn_out_w=_t(get(p + "attention.output.dense.weight", (h, h))),
                    attn_out_b=get(p + "attention.output.dense.bias", (h,)),
                    attn_ln_g=get(p + "attention.output.LayerNorm.weight", (h,)),
                    attn_ln_b=get(p + "attention.output.LayerNorm.bias", (h,)),
                    ffn_in_w=_t(get(p + "intermediate.dense.weight", (inter, h))),
                    ffn_in_b=get(p + "intermediate.dense.bias", (inter,)),
                    ffn_out_w=_t(get(p + "output.dense.weight", (h, inter))),
                    ffn_out_b=get(p + "output.dense.bias", (h,)),
                    ffn_ln_g=get(p + "output.LayerNorm.weight", (h,)),
                    ffn_ln_b=get(p + "output.LayerNorm.bias", (h,)),
                )
            )

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """`input_ids`, `attention_mask`: (batch, seq) integer arrays, mask 1 for real tokens.
        Returns the last hidden states, (batch, seq, hidden) float32."""
        batch, seq = input_ids.shape
        cfg = self.config
        heads = cfg.num_attention_heads
        head_dim = cfg.hidden_size // heads
        x = self.word_embeddings[input_ids]  # (batch, seq, hidden), a fresh array
        x += self.position_embeddings[:seq]
        x = x.reshape(batch * seq, cfg.hidden_size)
        _layer_norm(x, self.embed_ln_g, self.embed_ln_b, cfg.layer_norm_eps)
        # Additive mask: padded keys get the float32 minimum, as in Hugging Face's BERT.
        key_bias = np.where(attention_mask[:, None, None, :] > 0, _F32(0), np.finfo(_F32).min)

        for layer in self.layers:
            qkv = x @ layer.qkv_w
            qkv += layer.qkv_b
            # (batch·seq, 3·hidden) → three (batch, heads, seq, head_dim) strided views.
            q, k, v = qkv.reshape(batch, seq, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
            scores = np.matmul(q, k.transpose(0, 1, 3, 2))  # (batch, heads, seq, seq)
            scores += key_bias
            _softmax_last_axis(scores)
            context = np.matmul(scores, v)  # (batch, heads, seq, head_dim)
            context = context.transpose(0, 2, 1, 3).reshape(batch * seq, cfg.hidden_size)
            attn = context @ layer.attn_out_w
            attn += layer.attn_out_b
            attn += x
            _layer_norm(attn, layer.attn_ln_g, layer.attn_ln_b, cfg.layer_norm_eps)
            x = attn

            inner = x @ layer.ffn_in_w
            inner += layer.ffn_in_b
            gelu_(inner)
            out = inner @ layer.ffn_out_w
            out += layer.ffn_out_b
            out += x
            _layer_norm(out, layer.ffn_ln_g, layer.ffn_ln_b, cfg.layer_norm_eps)
            x = out
        return x.reshape(batch, seq, cfg.hidden_size)


class _TensorReader:
    """Fetches checkpoint tensors as float32, accepting names with or without a `bert.` prefix."""

    def __init__(self, tensors: Mapping[str, np.ndarray]) -> None:
        self._tensors = tensors
        self._prefix = "bert." if "bert.embeddings.word_embeddings.weight" in tensors else ""

    def array(self, name: str) -> np.ndarray:
        try:
            found = self._tensors[self._prefix + name]
        except KeyError:
            raise ValueError(f"tensor {self._prefix + name!r} is missing") from None
        return np.asarray(found, dtype=_F32)

    def __call__(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        found = self.array(name)
        if found.shape != shape:
            raise ValueError(f"tensor {self._prefix + name!r} has shape {found.shape}, expected {shape}")
        return found


def _t(weight: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(weight.T)


def _layer_norm(x: np.ndarray, gain: np.ndarray, bias: np.ndarray, eps: float) -> None:
    """In place over the last axis of a 2-D array: (x − mean)/√(var + eps)·gain + bias."""
    mean = x.mean(axis=1, keepdims=True)
    x -= mean
    var = np.einsum("ij,ij->i", x, x)[:, None]
    var *= _F32(1.0 / x.shape[1])
    var += _F32(eps)
    np.sqrt(var, out=var)
    x /= var
    x *= gain
    x += bias


def _softmax_last_axis(scores: np.ndarray) -> None:
    """In place; the row maximum is subtracted first so exp never overflows."""
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)


# Abramowitz & Stegun 7.1.26: erfc(z) ≈ t·P(t)·exp(−z²), t = 1/(1 + p·z), z ≥ 0, absolute error
# ≤ 1.5e-7. NumPy has no erf; in float32 this GELU is within 5e-7 of the exact one (measured
# against scipy.special.erf on normal samples of std 3), below float32 resolution at those values.
# The coefficients absorb z = |x|/√2 and the 1/2 of Φ(−|x|) = erfc(z)/2.
_AS_P = _F32(0.3275911 / math.sqrt(2.0))
_AS_HALF_COEFFS = tuple(
    _F32(0.5 * c) for c in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)
)
# Elements per block: three float32 scratch blocks of 128 KB stay in a core's L2 cache.
_GELU_BLOCK = 32768


def gelu_(x: np.ndarray) -> None:
    """In place on a C-contiguous array: x·Φ(x) = x·(1 + erf(x/√2))/2, BERT's exact GELU.

    Uses x·Φ(x) = max(x, 0) − |x|·Φ(−|x|), with Φ(−|x|) from the erfc approximation, so neither
    side subtracts nearly equal numbers. Runs over row blocks with reused scratch buffers: the
    dozen or so elementwise passes then read cache, not memory."""
    flat = x.reshape(-1, x.shape[-1])
    rows = max(1, _GELU_BLOCK // flat.shape[1])
    size = min(rows, flat.shape[0]) * flat.shape[1]
    scratch = [np.empty(size, dtype=_F32) for _ in range(3)]
    for start in range(0, flat.shape[0], rows):
        block = flat[start : start + rows]
        a, t, phi = (buf[: block.size].reshape(block.shape) for buf in scratch)
        np.abs(block, out=a)
        np.multiply(a, _AS_P, out=t)
        t += _F32(1)
        np.reciprocal(t, out=t)
        np.multiply(t, _AS_HALF_COEFFS[0], out=phi)
        for c in _AS_HALF_COEFFS[1:]:
            phi += c
            phi *= t
        np.multiply(a, a, out=t)
        t *= _F32(-0.5)
        np.exp(t, out=t)
        phi *= t  # Φ(−|x|)
        phi *= a
        np.maximum(block, _F32(0), out=block)
        block -= phi
