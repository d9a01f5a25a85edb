"""Distillation teachers: z-normalised ensembles, trained cross-encoder teachers, the CLI wiring."""

from __future__ import annotations

import numpy as np
import pytest

from retriever.docs import RouterDoc
from retriever.encoders import HashingEncoder
from retriever.router import Router
from retriever.teachers import EnsembleTeacher, resolve_teacher, train_teachers, zscore
from retriever.train_reranker import NegativeConfig, TrainConfig

DOCS = [RouterDoc(id=str(i), name=f"skill-{i}") for i in range(3)]


class Fixed:
    """A reranker that returns given scores."""

    def __init__(self, scores):
        self.scores = np.asarray(scores, np.float32)

    def score(self, query, docs, prior=None):
        return self.scores[: len(docs)]


def test_zscore_and_constant_scores():
    np.testing.assert_allclose(zscore(np.array([1.0, 2.0, 3.0])), [-1.2247449, 0.0, 1.2247449], rtol=1e-5)
    assert zscore(np.array([5.0, 5.0])).tolist() == [0.0, 0.0]


def test_ensemble_is_scale_free_mean_of_normalised_scores():
    # the second member ranks like the first on a 100x scale, the third disagrees; z-scores weigh them equally
    ens = EnsembleTeacher([Fixed([1, 2, 3]), Fixed([100, 200, 300]), Fixed([3, 2, 1])])
    got = ens.score("q", DOCS)
    np.testing.assert_allclose(got, zscore(np.array([1.0, 2.0, 3.0])) / 3, rtol=1e-5)
    assert np.argmax(got) == 2
    assert ens.score("q", []).shape == (0,)
    with pytest.raises(ValueError, match="at least one member"):
        EnsembleTeacher([])
    with pytest.raises(TypeError, match="score"):
        EnsembleTeacher([object()])


def test_resolve_teacher_auto_without_reranker_is_an_error(tmp_path):
    lib = tmp_path / "skills.json"
    lib.write_text("[]")
    with pytest.raises(ValueError, match="no trained reranker"):
        resolve_teacher(["auto"], lib)
    with pytest.raises(ValueError, match="at least one teacher"):
        resolve_teacher([], lib)


@pytest.mark.integration
def test_trained_teachers_differ_by_seed_and_view_and_ensemble(tmp_path):
    skills = [{"id": f"s{i}", "name": f"{a}-{b}", "description": f"Do the {b} thing in the {a} app quickly.",
               "body": f"{a}.{b}(x)", "category": a}
              for i, (a, b) in enumerate([("wallet", "send"), ("wallet", "balance"), ("music", "play"),
                                          ("phone", "text"), ("phone", "call")])]
    router = Router.from_docs(skills, encoder=HashingEncoder(64))
    config = TrainConfig(max_steps=2, time_budget_s=None, batch_queries=2,
                         negatives=NegativeConfig(n_dense=1, n_bm25=1, n_category=0, n_random=1))
    seen = []
    teachers = train_teachers(router, 2, config=config, on_teacher=lambda i, stats: seen.append(stats["steps"]))
    assert seen == [2, 2]
    assert [t.meta["teacher"] for t in teachers] == [{"seed": 0, "views": ["desc", "name"]},
                                                     {"seed": 1, "views": ["desc"]}]
    docs = list(router.docs.values())
    a, b = (t.score("send money", docs) for t in teachers)
    assert not np.allclose(a, b)
    for i, t in enumerate(teachers):
        t.save(tmp_path / f"t{i}")
    teacher, name = resolve_teacher([str(tmp_path / "t0"), str(tmp_path / "t1")])
    assert isinstance(teacher, EnsembleTeacher) and name.startswith("ensemble(")
    np.testing.assert_allclose(teacher.score("send money", docs), (zscore(a) + zscore(b)) / 2, rtol=1e-4, atol=1e-5)
