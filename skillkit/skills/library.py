"""A persistent, searchable skill library: a folder with the skills, a FAISS index and a manifest.

On disk (``LIB/``)::

    skills.jsonl       one skill per line: the authoritative content (usage counters included)
    index.npz          a retriever.index.VectorIndex (exact inner product, keyed by skill id) over
                       the L2-normalised embeddings of skill.to_text() (VectorIndex.to_bytes)
    index.keys.json    for every vector: the skill id and the content hash it was computed from, and
                       the SHA-256 of index.npz (reopening a library never re-encodes unchanged skills)
    manifest.json      schema version, embedding model, dimension, count, SHA-256 of every file
    history.jsonl      previous versions of modified / removed skills (for rollback), append-only
    files/             files bundled with skills (scripts, references, assets), content-addressed
                       and never rewritten; each skill lists its own (see skillkit.skills.bundle)
    .lock              file lock taken by every load and save

Every file is written atomically (temp file, fsync, rename, fsync of the folder) under the file
lock, in the order index -> skills -> manifest. ``skills.jsonl`` is the only authoritative file,
so a process killed at any moment leaves either the previous or the new set of skills, never a
mix; the index and the manifest are derived from it and, when they do not match (an interrupted
save, a corrupt or foreign index, another encoder), they are detected on load, a
:class:`LibraryRepairWarning` is issued, and the index is rebuilt from ``skills.jsonl`` (reusing
every cached vector whose content hash still matches).

Encoders and the index are the retriever's (:func:`retriever.encoders.get_encoder`,
:class:`retriever.index.VectorIndex`); the library adds persistence, history and skill filters.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from retriever.encoders import TextEncoder, get_encoder, normalize
from retriever.index import VectorIndex
from skillkit import __version__
from skillkit.core.fileio import atomic_write_bytes, atomic_write_text
from skillkit.core.schemas import TIERS, SkillBase, TaskUsage, parse_skill, slugify
from skillkit.skills.bundle import FILES_DIR, FileStore

SCHEMA_VERSION = 2
SKILLS_FILE = "skills.jsonl"
INDEX_FILE = "index.npz"
KEYS_FILE = "index.keys.json"
MANIFEST_FILE = "manifest.json"
HISTORY_FILE = "history.jsonl"
LOCK_FILE = ".lock"
#: Files of schema 1 (a bare FAISS index and its keys), removed by the first save of schema 2.
LEGACY_FILES = ("index.faiss", "index.keys.npz")
INDEX_KIND = "flat"  # exact search: a library is small next to a router's corpus, and exactness is promised
DEFAULT_EMBEDDER = "minilm"
LOCK_TIMEOUT_S = 120.0


class LibraryError(RuntimeError):
    """A skill library cannot be opened or changed as asked."""


class LibraryCorruptError(LibraryError):
    """``skills.jsonl`` itself is unreadable (the index alone is always rebuilt instead)."""


class LibraryRepairWarning(UserWarning):
    """The library was repaired on load (stale or corrupt index, out-of-date manifest)."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


# ---------------------------------------------------------------------------------------------
# The library
# ---------------------------------------------------------------------------------------------


def _warn(message: str) -> None:
    warnings.warn(message, LibraryRepairWarning, stacklevel=3)


class SkillLibrary:
    """Skills of every tier in one folder, searchable by meaning, safe against crashes.

    Changes (``add``/``update``/``remove``/``record_usage(..., save=False)``) live in memory
    until :meth:`save`; ``record_usage`` saves by default. Skills handed out by ``get``/``list``
    are the stored objects: change them through :meth:`update` (``save`` also re-checks content
    hashes, so an edited object is re-embedded either way).
    """

    def __init__(self, path: str | Path, embedder: str | TextEncoder | None = DEFAULT_EMBEDDER) -> None:
        self.path = Path(path)
        self._embedder_spec = embedder if embedder is not None else DEFAULT_EMBEDDER
        self._encoder: TextEncoder | None = None
        self.embedding_model: str = embedder if isinstance(embedder, str) else get_encoder(embedder).name
        self._skills: dict[str, SkillBase] = {}
        self._by_name: dict[str, str] = {}
        self._index: VectorIndex | None = None
        self._index_hash: dict[str, str] = {}  # skill id -> content hash of the vector stored for it
        self._stale: set[str] = set()  # skill ids whose vector may be missing or out of date
        self._vec_cache: dict[str, np.ndarray] = {}  # content hash -> vector (this session)
        self._pending_history: list[dict[str, Any]] = []
        self._history_cache: list[dict[str, Any]] | None = None
        self._dirty_skills = False
        self._dirty_index = False
        self._generation = 0
        self._disk_generation = 0
        self._lock = threading.RLock()
        self._file_lock: Any = None

    # ----- opening ------------------------------------------------------------------------------

    @staticmethod
    def exists(path: str | Path) -> bool:
        """True when ``path`` holds a skill library."""
        path = Path(path)
        return (path / MANIFEST_FILE).exists() or (path / SKILLS_FILE).exists()

    @classmethod
    def create(cls, path: str | Path, embedder: str | TextEncoder | None = DEFAULT_EMBEDDER) -> SkillLibrary:
        """Create an empty library folder (an error if one is already there)."""
        path = Path(path)
        if cls.exists(path):
            raise FileExistsError(f"{path} already holds a skill library (use SkillLibrary.load or open)")
        path.mkdir(parents=True, exist_ok=True)
        lib = cls(path, embedder)
        lib._dirty_skills = True
        lib.save()
        return lib

    @classmethod
    def load(cls, path: str | Path, embedder: str | TextEncoder | None = None) -> SkillLibrary:
        """Open an existing library. ``embedder`` defaults to the one named in the manifest; another
        one makes the index be rebuilt (with a warning)."""
        path = Path(path)
        if not cls.exists(path):
            raise FileNotFoundError(f"{path} is not a skill library (no {MANIFEST_FILE} or {SKILLS_FILE})")
        lib = cls(path, DEFAULT_EMBEDDER)
        try:
            lock = lib._locked()
            lock.acquire()
        except OSError:  # a read-only folder: read it as it is (atomic renames keep each file whole)
            lib._file_lock = None
            lib._load(embedder)
            return lib
        try:
            lib._clean_temp_files()
            lib._load(embedder)
        finally:
            lock.release()
        return lib

    @classmethod
    def open(cls, path: str | Path, create: bool = True, embedder: str | TextEncoder | None = None) -> SkillLibrary:
        """Load the library at ``path``, or create it (when ``create``) if there is none."""
        if cls.exists(path) or not create:
            return cls.load(path, embedder=embedder)
        return cls.create(path, embedder=embedder or DEFAULT_EMBEDDER)

    def _locked(self) -> Any:
        from filelock import FileLock

        if self._file_lock is None:
            self.path.mkdir(parents=True, exist_ok=True)
            self._file_lock = FileLock(str(self.path / LOCK_FILE), timeout=LOCK_TIMEOUT_S)
        return self._file_lock

    def _load(self, embedder: str | TextEncoder | None) -> None:
        manifest: dict[str, Any] = {}
        manifest_path = self.path / MANIFEST_FILE
        if manifest_path.exists():
            try:
                manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                _warn(f"{manifest_path} is unreadable ({exc}); rebuilding it from {SKILLS_FILE}")
                manifest = {}
        else:
            _warn(f"{self.path} has no {MANIFEST_FILE}; rebuilding it from {SKILLS_FILE}")
        if manifest.get("schema_version", SCHEMA_VERSION) > SCHEMA_VERSION:
            raise LibraryError(
                f"{self.path} was written by a newer skillkit (schema {manifest['schema_version']} > {SCHEMA_VERSION})"
            )
        stored_model = manifest.get("embedding_model") or DEFAULT_EMBEDDER
        if embedder is None:
            embedder = stored_model
        self._embedder_spec = embedder
        self.embedding_model = embedder if isinstance(embedder, str) else get_encoder(embedder).name
        self._disk_generation = self._generation = int(manifest.get("generation", 0))
        files = manifest.get("files", {})

        skills_path = self.path / SKILLS_FILE
        data = skills_path.read_bytes() if skills_path.exists() else b""
        for lineno, line in enumerate(data.decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                skill = parse_skill(json.loads(line))
            except ValueError as exc:
                raise LibraryCorruptError(f"{skills_path}:{lineno}: not a valid skill: {exc}") from exc
            self._insert(skill)
        skills_ok = files.get(SKILLS_FILE, {}).get("sha256") == _sha256(data)
        if manifest and not skills_ok:
            _warn(f"{skills_path} does not match {MANIFEST_FILE} (an interrupted save or a manual edit); "
                  "checking the index")
            self._dirty_skills = True  # rewrite the manifest at the next save
        elif not manifest:
            self._dirty_skills = True

        self._stale = set(self._skills)
        problem = self._load_index(files, stored_model)
        if problem:
            _warn(f"{self.path}: {problem}; the index will be rebuilt from {SKILLS_FILE}")
            self._dirty_index = True
        if self._stale:
            self._dirty_index = True

    def _load_index(self, files: dict[str, Any], stored_model: str) -> str | None:
        """Read the index and its keys; mark which skills have a trustworthy vector. Returns a problem."""
        index_path, keys_path = self.path / INDEX_FILE, self.path / KEYS_FILE
        if not self._skills and not index_path.exists():
            return None
        if self.embedding_model != stored_model:
            self._index = None
            return f"it was embedded with {stored_model!r}, not {self.embedding_model!r}"
        if not index_path.exists() or not keys_path.exists():
            return "the index is missing"
        try:
            index_bytes = index_path.read_bytes()
            keys = json.loads(keys_path.read_text(encoding="utf-8"))
            if keys.get("index_sha256") != _sha256(index_bytes):
                return "the index does not match its keys"
            index = VectorIndex.from_bytes(index_bytes, use_gpu=False)
            stored = {str(sid): str(h) for sid, h in keys["hashes"].items()}
        except Exception as exc:  # noqa: BLE001 - any failure means a corrupt index
            self._index = None
            return f"the index is unreadable ({type(exc).__name__}: {exc})"
        if set(index.ids()) != set(stored):
            return "the index and its keys disagree"
        self._index = index
        self._index_hash = stored
        problem = None
        for sid, skill in self._skills.items():
            if stored.get(sid) == skill.content_hash():
                self._stale.discard(sid)
            elif problem is None:
                problem = "the index is out of date"
        if len(stored) != len(self._skills) and problem is None:
            problem = "the index holds skills that are not in the library"
        return problem

    # ----- embedding ----------------------------------------------------------------------------

    @property
    def encoder(self) -> TextEncoder:
        """The library's encoder (shared within the process, loaded on first use)."""
        if self._encoder is None:
            self._encoder = get_encoder(self._embedder_spec)
        return self._encoder

    def encode(self, texts: list[str]) -> np.ndarray:
        """L2-normalised embeddings of ``texts`` with the library's encoder."""
        if not texts:
            return np.zeros((0, self._index_dim()), dtype=np.float32)
        return normalize(self.encoder.encode(list(texts)))

    def _index_dim(self) -> int:
        """The vector width: the index's, else the encoder's (a precomputed library learns it from its first vectors)."""
        if self._index is not None:
            return self._index.config.dim
        dim = self.encoder.dim
        if dim is None:
            raise LibraryError(f"the {self.embedding_model!r} library learns its dimension from the first "
                               "add_embeddings")
        return int(dim)

    def _sync_index(self, full_check: bool = False) -> None:
        """Bring the index in line with the skills, encoding only what changed."""
        if full_check:
            self._mark_changed()
            extra = set(self._index_hash) - set(self._skills)
            if extra:
                self._ensure_index()
                self._index.remove(extra)  # type: ignore[union-attr]
                for sid in extra:
                    self._index_hash.pop(sid, None)
                self._dirty_index = True
        if not self._stale:
            return
        stale = [sid for sid in self._stale if sid in self._skills]
        gone = [sid for sid in self._stale if sid not in self._skills]
        hashes = {sid: self._skills[sid].content_hash() for sid in stale}
        need = [sid for sid in stale if hashes[sid] not in self._vec_cache]
        if need:
            vecs = self.encode([self._skills[sid].to_text() for sid in need])
            for sid, vec in zip(need, vecs):
                self._vec_cache[hashes[sid]] = vec
        if stale:
            dims = {len(self._vec_cache[hashes[sid]]) for sid in stale}
            if len(dims) != 1 or (self._index is not None and dims != {self._index.config.dim}):
                have = self._index.config.dim if self._index is not None else None
                raise LibraryError(f"embedding dimensions {sorted(dims)} do not match the index ({have})")
            self._ensure_index(dims.pop())
        else:
            self._ensure_index()
        index = self._index
        assert index is not None
        old = [sid for sid in gone if sid in self._index_hash]
        if old:
            index.remove(old)
            for sid in old:
                self._index_hash.pop(sid, None)
        if stale:  # add() replaces the vector of an id already in the index
            index.add(stale, np.stack([self._vec_cache[hashes[sid]] for sid in stale]))
            for sid in stale:
                self._index_hash[sid] = hashes[sid]
                skill = self._skills[sid]
                if skill.embedding_model != self.embedding_model:
                    skill.embedding_model = self.embedding_model
                    self._dirty_skills = True
                self._vec_cache.pop(hashes[sid], None)  # the index holds it now
        self._stale.clear()
        self._dirty_index = True
        if len(self._vec_cache) > 4 * max(1024, len(self._skills)):
            self._vec_cache.clear()

    def _mark_changed(self) -> None:
        """Mark stale every skill whose stored vector does not match its current text."""
        for sid, skill in self._skills.items():
            if self._index_hash.get(sid) != skill.content_hash():
                self._stale.add(sid)

    def _ensure_index(self, dim: int | None = None) -> None:
        """Create the (empty) index when there is none; the dimension comes from the vectors at hand
        or, failing that, from the encoder (which is then loaded)."""
        if self._index is None:
            self._index = VectorIndex(dim or self._index_dim(), kind=INDEX_KIND, use_gpu=False)
            self._index_hash = {}

    def add_embeddings(self, skills: Iterable[SkillBase | dict], embeddings: np.ndarray) -> list[SkillBase]:
        """Add skills with precomputed embeddings (one row per skill, already normalised or not)."""
        skills = list(skills)
        vecs = np.asarray(embeddings, dtype=np.float32)
        if len(vecs) != len(skills):
            raise ValueError(f"{len(skills)} skills but {len(vecs)} embeddings")
        return [self.add(s, embedding=v) for s, v in zip(skills, vecs)]

    # ----- changes ------------------------------------------------------------------------------

    def _insert(self, skill: SkillBase) -> None:
        self._skills[skill.id] = skill
        self._by_name[skill.name] = skill.id

    def add(self, skill: SkillBase | dict, embedding: np.ndarray | None = None) -> SkillBase:
        """Add a new skill (its ``id`` and ``name`` must be unused); returns the stored skill.

        ``embedding`` (the vector of ``skill.to_text()``, e.g. computed in a batch) saves encoding it.
        """
        skill = parse_skill(skill) if isinstance(skill, dict) else skill
        if not isinstance(skill, SkillBase):
            raise TypeError(f"expected a skill, got {type(skill).__name__}")
        with self._lock:
            if skill.id in self._skills:
                raise ValueError(f"a skill with id {skill.id!r} is already in the library (use update)")
            if skill.name in self._by_name:
                raise ValueError(
                    f"a skill named {skill.name!r} is already in the library (use update, or unique_name())"
                )
            if skill.embedding_model is None:
                skill.embedding_model = self.embedding_model
            self._insert(skill)
            self._stale.add(skill.id)
            self._dirty_skills = True
            if embedding is not None:
                self._cache_vector(skill, embedding)
            return skill

    def _cache_vector(self, skill: SkillBase, embedding: np.ndarray) -> None:
        vec = np.asarray(embedding, dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(vec))
        self._vec_cache[skill.content_hash()] = vec / norm if norm > 0 else vec

    def unique_name(self, base: str) -> str:
        """``base`` made a valid name that no skill in the library uses yet (``-2``, ``-3`` ... appended)."""
        base = slugify(base)
        if base not in self._by_name:
            return base
        for i in range(2, 1_000_000):
            suffix = f"-{i}"
            name = base[: 64 - len(suffix)].rstrip("-") + suffix
            if name not in self._by_name:
                return name
        raise LibraryError(f"no free name for {base!r}")  # pragma: no cover

    def _resolve(self, name_or_id: str | SkillBase) -> str:
        if isinstance(name_or_id, SkillBase):
            if name_or_id.id in self._skills:
                return name_or_id.id
            name_or_id = name_or_id.name
        if name_or_id in self._skills:
            return name_or_id
        if name_or_id in self._by_name:
            return self._by_name[name_or_id]
        raise KeyError(f"no skill named {name_or_id!r} in {self.path}")

    def get(self, name_or_id: str | SkillBase) -> SkillBase:
        """The skill with this id or name (``KeyError`` when there is none)."""
        with self._lock:
            return self._skills[self._resolve(name_or_id)]

    def find(self, name_or_id: str) -> SkillBase | None:
        """Like :meth:`get` but returns None when absent."""
        try:
            return self.get(name_or_id)
        except KeyError:
            return None

    def __contains__(self, name_or_id: object) -> bool:
        if isinstance(name_or_id, SkillBase):
            return name_or_id.id in self._skills
        return name_or_id in self._skills or name_or_id in self._by_name

    def update(self, skill: SkillBase | dict, bump_version: bool = True, op: str = "modify",
               history: bool = True, embedding: np.ndarray | None = None) -> SkillBase:
        """Replace a stored skill (matched by id, else by name) with ``skill``.

        The previous version goes to the history file (unless ``history`` is False, for changes of
        provenance only); with ``bump_version`` the new one gets the next version number and a
        fresh ``modified_at``. ``created_at`` is kept. Pass a changed copy (``model_copy``), not the
        stored object edited in place, or the history gets the edited object. ``embedding`` is the
        new text's vector when already computed.
        """
        skill = parse_skill(skill) if isinstance(skill, dict) else skill
        with self._lock:
            sid = skill.id if skill.id in self._skills else self._resolve(skill.name)
            old = self._skills[sid]
            if skill.name != old.name and skill.name in self._by_name:
                raise ValueError(f"cannot rename {old.name!r} to {skill.name!r}: that name is taken")
            snapshot = old.model_copy(deep=True)
            new = skill.model_copy(deep=True) if skill is old else skill
            if new.id != sid:
                new = new.model_copy(update={"id": sid})
            new.created_at = snapshot.created_at
            if bump_version:
                new.version = max(snapshot.version, self._max_history_version(sid)) + 1
                new.touch()
            if history:
                self._record_history(op, snapshot)
            del self._by_name[snapshot.name]
            self._insert(new)
            self._stale.add(sid)
            self._dirty_skills = True
            if embedding is not None:
                self._cache_vector(new, embedding)
            return new

    def remove(self, name_or_id: str | SkillBase) -> SkillBase:
        """Remove a skill (kept in the history, so ``rollback`` can bring it back); returns it."""
        with self._lock:
            sid = self._resolve(name_or_id)
            skill = self._skills.pop(sid)
            del self._by_name[skill.name]
            self._record_history("remove", skill)
            self._stale.add(sid)
            self._dirty_skills = True
            return skill

    def record_usage(self, name_or_id: str | SkillBase, reward: float, task_id: str | None = None,
                     save: bool = True) -> SkillBase:
        """Count one selection of a skill and its reward (globally and for ``task_id``); saves by default."""
        with self._lock:
            skill = self._skills[self._resolve(name_or_id)]
            skill.n_selected += 1
            skill.reward_sum += float(reward)
            if task_id is not None:
                usage = skill.task_usage.get(task_id) or TaskUsage()
                usage.n += 1
                usage.reward_sum += float(reward)
                skill.task_usage[task_id] = usage
            self._dirty_skills = True
        if save:
            self.save()
        return skill

    # ----- reading ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._skills)

    def __iter__(self) -> Iterator[SkillBase]:
        return iter(list(self._skills.values()))

    def names(self) -> list[str]:
        """All skill names, in library order."""
        return [s.name for s in self._skills.values()]

    def list(self, tier: str | None = None, tags: Iterable[str] | str | None = None,
             env: str | None = None) -> list[SkillBase]:
        """Skills filtered by tier, by tags (a skill must carry all of them) and by environment."""
        return [s for s in self._skills.values() if self._matches(s, tier, tags, env)]

    @staticmethod
    def _matches(skill: SkillBase, tier: str | None, tags: Iterable[str] | str | None, env: str | None) -> bool:
        if tier is not None and tier not in TIERS:
            raise ValueError(f"unknown tier {tier!r}: use one of {', '.join(TIERS)}")
        if tier is not None and skill.tier != tier:
            return False
        if env is not None and skill.env != env:
            return False
        if tags:
            wanted = [tags] if isinstance(tags, str) else list(tags)
            if not set(wanted) <= set(skill.tags):
                return False
        return True

    def search(self, query: str, k: int = 5, tier: str | None = None, tags: Iterable[str] | str | None = None,
               env: str | None = None, min_score: float | None = None) -> list[tuple[SkillBase, float]]:
        """The ``k`` skills closest in meaning to ``query`` (cosine similarity), best first."""
        if not self._skills or k <= 0:
            return []
        with self._lock:
            self._sync_index()
            query_vec = self.encode([query])[0]
            return self.search_vector(query_vec, k=k, tier=tier, tags=tags, env=env, min_score=min_score)

    def search_vector(self, vector: np.ndarray, k: int = 5, tier: str | None = None,
                      tags: Iterable[str] | str | None = None, env: str | None = None,
                      min_score: float | None = None) -> list[tuple[SkillBase, float]]:
        """Like :meth:`search` with an embedding instead of a text."""
        with self._lock:
            self._sync_index()
            if self._index is None or len(self._index) == 0 or k <= 0:
                return []
            filtered = tier is not None or tags or env is not None
            total = len(self._index)
            fetch = min(total, k if not filtered else max(4 * k, 32))
            query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
            norm = float(np.linalg.norm(query))
            query = query / norm if norm > 0 else query
            while True:
                scores, ids = self._index.search(query, fetch)
                out: list[tuple[SkillBase, float]] = []
                for score, sid in zip(scores[0].tolist(), ids[0]):
                    if sid not in self._skills:
                        continue
                    if min_score is not None and score < min_score:
                        break
                    skill = self._skills[sid]
                    if self._matches(skill, tier, tags, env):
                        out.append((skill, float(score)))
                        if len(out) == k:
                            return out
                below = min_score is not None and len(scores[0]) and scores[0][-1] < min_score
                if fetch >= total or below:
                    return out
                fetch = min(total, fetch * 4)

    def embeddings(self, skills: Iterable[SkillBase] | None = None) -> np.ndarray:
        """The stored (normalised) embeddings of ``skills`` (default all, in library order)."""
        with self._lock:
            self._sync_index()
            chosen = list(self._skills.values()) if skills is None else list(skills)
            if not chosen:
                return np.zeros((0, self._index_dim()), dtype=np.float32)
            assert self._index is not None
            return self._index.get_vectors([s.id for s in chosen])

    def reindex(self, full: bool = False, save: bool = True) -> int:
        """Re-embed what is stale now (``full``: every skill) instead of at the next search or save;
        returns how many skills were embedded."""
        with self._lock:
            if full:
                self._stale = set(self._skills)
                self._vec_cache.clear()
            else:
                self._mark_changed()
            n = len([sid for sid in self._stale if sid in self._skills])
            self._sync_index(full_check=True)
            self._dirty_index = True
        if save:
            self.save()
        return n

    # ----- history and rollback -----------------------------------------------------------------

    def _record_history(self, op: str, skill: SkillBase) -> None:
        record = {"op": op, "at": _now_iso(), "skill": skill.model_dump(mode="json")}
        self._pending_history.append(record)
        if self._history_cache is not None:
            self._history_cache.append(record)

    def _read_history(self) -> list[dict[str, Any]]:
        if self._history_cache is None:
            records: list[dict[str, Any]] = []
            path = self.path / HISTORY_FILE
            if path.exists():
                for line in path.read_text(encoding="utf-8").splitlines():
                    try:
                        rec = json.loads(line)
                        parse_skill(rec["skill"])
                        records.append(rec)
                    except (ValueError, KeyError, TypeError):
                        continue  # a line cut by a crash; the save that wrote it never committed
            self._history_cache = records + self._pending_history
        return self._history_cache

    def _max_history_version(self, sid: str) -> int:
        return max((int(r["skill"].get("version", 1)) for r in self._read_history() if r["skill"].get("id") == sid),
                   default=0)

    def history(self, name_or_id: str | None = None) -> list[dict[str, Any]]:
        """History records ``{"op", "at", "skill"}``, oldest first (of one skill, or all)."""
        records = self._read_history()
        if name_or_id is None:
            return list(records)
        sid = self._resolve(name_or_id) if name_or_id in self else None
        return [r for r in records if r["skill"].get("id") == sid or (sid is None and r["skill"].get("name") == name_or_id)]

    def rollback(self, name_or_id: str, version: int | None = None) -> SkillBase:
        """Restore the previous version of a skill (or ``version``), or bring back a removed skill.

        The current version goes to the history, so a rollback can itself be looked at later.
        """
        with self._lock:
            if name_or_id in self:
                current = self.get(name_or_id)
                candidates = self.history(current.id)
                if version is not None:
                    candidates = [r for r in candidates if r["skill"]["version"] == version]
                else:
                    candidates = [r for r in candidates if r["skill"]["version"] < current.version]
                if not candidates:
                    which = f"version {version}" if version is not None else "an older version"
                    raise ValueError(f"skill {current.name!r} (version {current.version}) has no {which} in its history")
                old = parse_skill(candidates[-1]["skill"])
                old.n_selected, old.reward_sum = current.n_selected, current.reward_sum
                old.task_usage = current.task_usage
                return self.update(old, bump_version=False, op="rollback")
            removed = [r for r in self.history(name_or_id) if r["op"] == "remove"]
            if version is not None:
                removed = [r for r in removed if r["skill"]["version"] == version]
            if not removed:
                raise KeyError(f"no skill named {name_or_id!r} in {self.path} or its history")
            skill = parse_skill(removed[-1]["skill"])
            if skill.name in self._by_name:
                raise ValueError(f"cannot restore {skill.name!r}: another skill now has that name")
            return self.add(skill)

    # ----- saving -------------------------------------------------------------------------------

    def save(self) -> None:
        """Write the library atomically (index, history, skills, manifest), under the file lock."""
        with self._lock, self._locked():
            self._clean_temp_files()
            self._sync_index(full_check=True)
            self._check_disk_generation()
            files: dict[str, Any] = {}
            manifest_path = self.path / MANIFEST_FILE
            old_files: dict[str, Any] = {}
            if manifest_path.exists():
                try:
                    old_files = json.loads(manifest_path.read_text(encoding="utf-8")).get("files", {})
                except ValueError:
                    old_files = {}
            if self._index is not None and (self._dirty_index or not (self.path / INDEX_FILE).exists()):
                index_bytes = self._index.to_bytes()
                index_sha = _sha256(index_bytes)
                keys_bytes = json.dumps({"index_sha256": index_sha, "hashes": self._index_hash}).encode("utf-8")
                atomic_write_bytes(self.path / KEYS_FILE, keys_bytes)
                atomic_write_bytes(self.path / INDEX_FILE, index_bytes)
                files[INDEX_FILE] = {"sha256": index_sha, "size": len(index_bytes)}
                files[KEYS_FILE] = {"sha256": _sha256(keys_bytes), "size": len(keys_bytes)}
            else:
                for name in (INDEX_FILE, KEYS_FILE):
                    if name in old_files:
                        files[name] = old_files[name]
            self._append_history()
            skills_bytes = "".join(s.model_dump_json() + "\n" for s in self._skills.values()).encode("utf-8")
            skills_sha = _sha256(skills_bytes)
            # Written when anything changed, also in place (the bytes are the judge, not the flags).
            if (self._dirty_skills or old_files.get(SKILLS_FILE, {}).get("sha256") != skills_sha
                    or not (self.path / SKILLS_FILE).exists()):
                atomic_write_bytes(self.path / SKILLS_FILE, skills_bytes)
            files[SKILLS_FILE] = {"sha256": skills_sha, "size": len(skills_bytes)}
            self._generation = max(self._generation, self._disk_generation) + 1
            counts = {t: 0 for t in TIERS}
            for s in self._skills.values():
                counts[s.tier] += 1
            manifest = {
                "schema_version": SCHEMA_VERSION,
                "skillkit_version": __version__,
                "generation": self._generation,
                "updated_at": _now_iso(),
                "embedding_model": self.embedding_model,
                "dim": self._index.config.dim if self._index is not None else None,
                "index_type": f"retriever.index.VectorIndex(kind={INDEX_KIND})",
                "metric": "cosine (inner product of L2-normalised vectors)",
                "count": len(self._skills),
                "tiers": counts,
                "files": files,
            }
            atomic_write_text(manifest_path, json.dumps(manifest, indent=2) + "\n")
            for name in LEGACY_FILES:  # after the commit: until then they belong to the previous manifest
                (self.path / name).unlink(missing_ok=True)
            self._disk_generation = self._generation
            self._dirty_skills = self._dirty_index = False

    def _check_disk_generation(self) -> None:
        try:
            disk = json.loads((self.path / MANIFEST_FILE).read_text(encoding="utf-8")).get("generation", 0)
        except (OSError, ValueError):
            return
        if disk > self._disk_generation:
            warnings.warn(
                f"{self.path} was saved by another process since it was loaded (generation {disk} > "
                f"{self._disk_generation}); this save replaces those changes",
                LibraryRepairWarning, stacklevel=3,
            )

    def _append_history(self) -> None:
        if not self._pending_history:
            return
        path = self.path / HISTORY_FILE
        # A crash in the middle of an append may have left a cut line: drop it before appending.
        if path.exists():
            with open(path, "rb+") as fh:
                data_end = fh.seek(0, os.SEEK_END)
                if data_end:
                    fh.seek(max(0, data_end - 1))
                    if fh.read(1) != b"\n":
                        fh.seek(0)
                        content = fh.read()
                        fh.truncate(content.rfind(b"\n") + 1)
        payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self._pending_history)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        self._pending_history = []

    def _clean_temp_files(self) -> None:
        """Remove temp files left by a writer that was killed (safe: we hold the lock)."""
        for tmp in self.path.glob(".*.tmp"):
            try:
                tmp.unlink()
            except OSError:  # pragma: no cover
                pass

    # ----- bundled files ------------------------------------------------------------------------

    def file_store(self) -> FileStore:
        """The store of the files bundled with this library's skills (``LIB/files``)."""
        return FileStore(self.path / FILES_DIR)

    # ----- reporting ----------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        """The manifest as last written (empty when there is none)."""
        try:
            return json.loads((self.path / MANIFEST_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def stats(self) -> dict[str, Any]:
        """Counts per tier and environment, usage totals, history size and index state."""
        tiers = {t: 0 for t in TIERS}
        envs: dict[str, int] = {}
        for s in self._skills.values():
            tiers[s.tier] += 1
            envs[s.env or "-"] = envs.get(s.env or "-", 0) + 1
        manifest = self.manifest()
        return {
            "path": str(self.path),
            "count": len(self._skills),
            "tiers": tiers,
            "envs": envs,
            "embedding_model": self.embedding_model,
            "dim": manifest.get("dim"),
            "generation": self._generation,
            "selections": sum(s.n_selected for s in self._skills.values()),
            "reward_sum": sum(s.reward_sum for s in self._skills.values()),
            "history_records": len(self._read_history()),
            "index_up_to_date": not self._stale and not self._dirty_index,
            "extraction_rounds": sorted({s.extraction_round for s in self._skills.values()}),
        }

    def __repr__(self) -> str:
        return f"SkillLibrary({str(self.path)!r}, {len(self)} skills, encoder={self.embedding_model!r})"



def open_skill_source(path: str | Path) -> SkillLibrary | Path:
    """What :meth:`retriever.router.Router.from_library` takes for a path: a library folder opened as a
    :class:`SkillLibrary` (so its stored vectors are reused), any other path (a JSON/JSONL file of
    skills) as it is."""
    path = Path(path)
    return SkillLibrary.load(path) if path.is_dir() and SkillLibrary.exists(path) else path
