"""Pattern tags of the app scenarios, the train scenarios that share a pattern, and the oracle-skill
check of benchmarks/apps_oracle_skill.py (tiny model): it runs, and the skill text reaches the prompt."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from environments.apps import SCENARIOS, get_task
from environments.apps.patterns import pattern_matches, reference_apis, shares_pattern
from environments.apps.scenarios.base import PATTERNS
from skillkit.agent import BODY_HEADER, AgentConfig
from skillkit.core.llm.hf import HFBackend

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "apps_oracle_skill.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("apps_oracle_skill", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_scenario_has_a_pattern_used_in_train_and_test():
    assert all(s.pattern in PATTERNS for s in SCENARIOS), [s.id for s in SCENARIOS if s.pattern not in PATTERNS]
    for split in ("train", "test_normal"):
        assert {s.pattern for s in SCENARIOS if s.split == split} == set(PATTERNS), split


def test_pattern_matches_are_train_scenarios_sharing_pattern_and_an_app_best_first():
    normal = [s for s in SCENARIOS if s.split == "test_normal"]
    matched = 0
    for scenario in normal:
        found = pattern_matches(scenario.id)
        matched += bool(found)
        assert all(m.split == "train" and shares_pattern(scenario, m) for m in found)
        shared = [len(reference_apis(scenario.id) & reference_apis(m.id)) for m in found]
        assert shared == sorted(shared, reverse=True)
        others = [s for s in SCENARIOS if s.split == "train" and s not in found]
        assert not any(shares_pattern(scenario, s) for s in others)
    assert matched >= 25  # most test scenarios have an oracle skill
    assert [m.id for m in pattern_matches("email_count_folder")] == ["email_count_unread"]
    assert pattern_matches("calendar_free_slot_meeting")[0].id == "calendar_create_event"  # shares create_event
    assert pattern_matches("phone_contact_number") == []


def test_oracle_inputs_are_checked(script):
    with pytest.raises(ValueError, match="train"):
        script.oracle_skill("email_count_folder")
    with pytest.raises(ValueError, match="no train scenario"):
        script.OracleRouter(["phone_contact_number_1"])
    with pytest.raises(ValueError, match="not train"):
        script.oracle_tasks("train")
    ids = script.oracle_tasks("test", variants=2)
    assert ids and all(pattern_matches(get_task(t).scenario_id) for t in ids)
    assert {t.rsplit("_", 1)[1] for t in ids} == {"1", "2"}


class RecordingBackend(HFBackend):
    """The tiny model, keeping every chat it was asked to continue."""

    def __init__(self, model, tokenizer):
        super().__init__(model, tokenizer, batch_size=8)
        self.chats: list[list[dict[str, str]]] = []

    def generate(self, requests, sampling=None):
        self.chats.extend(requests)
        return super().generate(requests, sampling)


def test_oracle_check_runs_and_the_skill_text_reaches_the_prompt(script, tiny_lm):
    backend = RecordingBackend(*tiny_lm)
    ids = script.oracle_tasks("test_normal", variants=1, limit=2)
    report, by_condition = script.run_check(backend, ids, per_task=1, max_steps=1,
                                            config=AgentConfig(max_new_tokens=8, max_skill_tokens=1024))
    assert report["n_tasks"] == 2 and set(report["conditions"]) == {"no skill", "oracle skill"}
    assert set(report["paired_difference"]) == {"tgc", "sgc", "reference_api"}
    for condition in report["conditions"].values():
        assert 0.0 <= condition["tgc"]["low"] <= condition["tgc"]["mean"] <= condition["tgc"]["high"] <= 1.0
    router = script.OracleRouter(ids)
    for row, plain, oracle in zip(report["tasks"], by_condition["no skill"], by_condition["oracle skill"]):
        instruction = get_task(row["task_id"]).instruction
        wanted = router.skills_for(instruction)
        assert wanted and row["oracle_skills"] == wanted == [f"oracle-{row['matches'][0].replace('_', '-')}"]
        assert plain.turns[0].skills_shown == [] and oracle.turns[0].skills_shown == wanted
        # the chats of this task: one without skills, one with the train reference's code in it
        chats = [c for c in backend.chats if f"Task: {instruction}" in c[0]["content"]]
        assert len(chats) == 2
        body = router.get(wanted[0]).body
        with_skill = [c for c in chats if BODY_HEADER in c[-1]["content"]]
        assert len(with_skill) == 1 and body in with_skill[0][-1]["content"]
        assert "Reference solution (ground truth)" not in str([c for c in chats if c not in with_skill])
