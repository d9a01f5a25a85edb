"""The training config: one YAML file = one reproducible run; ``method`` switches the algorithm.

Methods (docs/design.md section 6):

=========================  ======================================================================
``grpo``                   reward only: ``L = L_GRPO``
``skillsd``                ``L = L_GRPO + lambda * L_SDL``, teacher = the student (synced every
                           ``teacher.sync_every`` iterations) + a skill made from the agent's own
                           episodes (never from the environment's oracle)
``skillsd_frozen``         same, teacher = a copy of the initial weights (``sync_every: 0``; ablation)
``opsd``                   ground-truth teacher: same loss as ``skillsd``, but the teacher's skill
                           is the oracle's expert episode of the task (solver plan / reference
                           solution). Distillation from ground truth, a baseline, not Skill-SD
``skillsd_gt``             ground-truth guidance: ``skillsd`` with ``L_SDL`` replaced by
                           ``(1 - alpha) * L_SDL + alpha * L_GT``, L_GT the NLL of the oracle's optimal
                           moves on every visited state (``loss.gt_alpha``: a number or ``auto``)
``opd``                    on-policy distillation: ``L = L_SDL`` (teacher with skill, no reward)
``skill_in_prompt_grpo``   GRPO where the *student* sees the skill in its own prompt
``sft``                    supervised warm start on the environment's expert (solver) trajectories
=========================  ======================================================================

Options of the distillation term (any method with a teacher; ``docs/training.md`` has the table):
``generations: R`` with ``teacher.anchor_beta`` (anchored generations), ``loss.paced: {a, b}``
(PACED), ``loss.srpo: {enabled, uncertainty_weight}`` (SRPO), ``loss.sdar: {tau, max_weight}``
(SDAR). ``watch`` sets the teacher-hacking watch.

Renamed keys are converted with a warning when the meaning is kept (``teacher.mode: dynamic`` ->
``teacher.sync_every: 1``, ``frozen`` -> ``0``) and refused with an explanation when it is not
(``teacher.seed_from_expert: true`` and ``teacher.skills: expert`` put ground truth into the
skills: that is ``method: opsd``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from skillkit.core.config import StrictModel, load_config

Method = Literal["grpo", "skillsd", "skillsd_frozen", "opsd", "skillsd_gt", "opd", "skill_in_prompt_grpo", "sft"]


@dataclass(frozen=True)
class MethodSpec:
    """What a method uses: the reward term, the distillation term (with a teacher), skills in the
    student prompt, supervised data, and whether its skills are ground truth from the oracle."""

    rl: bool
    distill: bool
    skill_in_student: bool = False
    sft: bool = False
    ground_truth: bool = False           # teacher skills from env.oracle() (OPSD), not from experience
    oracle_targets: bool = False         # the oracle's optimal moves as targets (ground-truth guidance)
    teacher_sync: int | None = None      # fixed teacher.sync_every (skillsd_frozen: 0); None: the config's


METHODS: dict[str, MethodSpec] = {
    "grpo": MethodSpec(rl=True, distill=False),
    "skillsd": MethodSpec(rl=True, distill=True),
    "skillsd_frozen": MethodSpec(rl=True, distill=True, teacher_sync=0),
    "opsd": MethodSpec(rl=True, distill=True, ground_truth=True),
    "skillsd_gt": MethodSpec(rl=True, distill=True, oracle_targets=True),
    "opd": MethodSpec(rl=False, distill=True),
    "skill_in_prompt_grpo": MethodSpec(rl=True, distill=False, skill_in_student=True),
    "sft": MethodSpec(rl=False, distill=False, sft=True),
}


class LoraConfig(StrictModel):
    """LoRA adapters through peft (only the adapters are trained)."""

    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


class ModelConfig(StrictModel):
    """The policy: a model name (``smollm2-135m``, ``tiny-random``, a local folder or a hub id)."""

    name: str = "smollm2-135m"
    precision: Literal["auto", "fp32", "bf16"] = "auto"   # auto: bf16 autocast on CUDA, fp32 on CPU
    device: str = "auto"
    lora: LoraConfig | None = None
    gradient_checkpointing: bool = False
    logprob_chunk_size: int | None = Field(512, ge=1)     # None: naive full-vocabulary log-softmax


class EnvConfig(StrictModel):
    """The environment (``environments.make(name, **options)``) and its task splits."""

    name: str = "sokoban"
    options: dict[str, Any] = Field(default_factory=lambda: {"variant": "1box", "max_steps": 40})
    train_split: str = "train"
    eval_split: str = "test"
    max_train_tasks: int | None = Field(None, ge=1)   # first N tasks of the train split
    max_eval_tasks: int | None = Field(32, ge=1)


class RolloutConfig(StrictModel):
    """How episodes are collected each iteration."""

    backend: Literal["hf"] = "hf"                     # the live weights; see docs/scaling.md for vLLM
    tasks_per_iteration: int = Field(8, ge=1)
    group_size: int = Field(8, ge=1)                  # G rollouts per task
    history_window: int = Field(2, ge=0)              # last k turns in the prompt
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(32, ge=1)
    stop: list[str] = Field(default_factory=list)
    max_turns: int | None = Field(None, ge=1)         # default: the environment's max_steps
    generation_batch_size: int = Field(64, ge=1)
    ray_workers: int = Field(0, ge=0)                 # >0: environments live in Ray actors
    save_trajectories: bool = True


class TeacherConfig(StrictModel):
    """The skill-conditioned teacher and the skills it sees.

    ``skills``: ``library`` (per-task banks of summaries of the agent's own episodes, UCB
    selection; a ``library_path`` may start it from an existing library) or ``none``. Ground truth
    is never a skill here: the oracle's expert episodes are ``method: opsd``.

    ``sync_every``: the teacher's weights are the student's at the start of every
    ``sync_every``-th iteration (1: the current weights every iteration, no copy in memory;
    0: frozen at the start of training; N: refreshed at iterations 1, 1 + N, 1 + 2N, ...).

    ``credit``: what a skill is credited with (UCB). For a teacher skill, the change of the task's
    group outcome (``success`` rate or mean ``return``) from the visit whose update used the skill
    to the task's next visit; for a skill in the student's prompt, that visit's outcome itself.
    """

    sync_every: int = Field(1, ge=0)
    # anchored generations: generation k+1's teacher is log((1 - beta) p_k + beta p_0) (generations > 1)
    anchor_beta: float = Field(0.0, ge=0.0, le=1.0)
    skill_position: Literal["user", "system"] = "user"
    skills: Literal["library", "none"] = "library"
    library_path: str | None = None                   # default: <run>/library
    library_embedder: str = "minilm"                  # "hashing" needs no model (fast smoke tests)
    bank_size: int = Field(4, ge=1)                   # skills per task; when full the weakest is replaced
    summarize: bool = True                            # summarise each iteration's episodes into the banks
    credit: Literal["success", "return"] = "success"
    ucb_c: float = Field(1.0, ge=0.0)
    batch_size: int = Field(16, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "mode" in data:
            mode = data.pop("mode")
            if mode not in ("dynamic", "frozen"):
                raise ValueError(f"teacher.mode was replaced by teacher.sync_every; got mode={mode!r}")
            if "sync_every" in data:
                raise ValueError("give teacher.sync_every only (teacher.mode is its old name)")
            data["sync_every"] = 1 if mode == "dynamic" else 0
            warnings.warn(f"teacher.mode: {mode} is deprecated; write teacher.sync_every: {data['sync_every']}",
                          FutureWarning, stacklevel=2)
        if "seed_from_expert" in data:
            if data.pop("seed_from_expert"):
                raise ValueError("teacher.seed_from_expert was removed: skills seeded with the oracle's expert "
                                 "episodes are ground truth, not the agent's experience; use `method: opsd` for a "
                                 "ground-truth teacher (configs/*_opsd.yaml)")
            warnings.warn("teacher.seed_from_expert is deprecated (skills never come from the oracle); drop the key",
                          FutureWarning, stacklevel=2)
        if data.get("skills") == "expert":
            raise ValueError("teacher.skills: expert is ground truth; use `method: opsd` (configs/*_opsd.yaml)")
        return data


class PacedConfig(StrictModel):
    """PACED: each task's distillation weighted by ``w(p) = p^a (1 - p)^b`` of its running pass rate."""

    a: float = Field(1.0, ge=0.0)
    b: float = Field(1.0, ge=0.0)


class SrpoConfig(StrictModel):
    """SRPO: successful rollouts to the GRPO term, failed ones to the distillation term; tokens where
    the teacher is uncertain weighted by ``exp(-uncertainty_weight * H_teacher)`` (0: off)."""

    enabled: bool = False
    uncertainty_weight: float = Field(0.0, ge=0.0)


class SdarConfig(StrictModel):
    """SDAR: ``w_t = max_weight * sigmoid(sg(logp_teacher - logp_student) / tau)`` on each token of L_SDL."""

    tau: float = Field(1.0, gt=0.0)
    max_weight: float = Field(2.0, gt=0.0)


class LossConfig(StrictModel):
    """Loss hyper-parameters (``lambda_sdl`` is the paper's lambda, best 0.001) and the options of the
    distillation term (see :mod:`trainer.losses`)."""

    lambda_sdl: float = Field(0.001, ge=0.0)
    clip_eps: float = Field(0.2, gt=0.0)
    rho_max: float = Field(2.0, gt=0.0)
    adv_eps: float = Field(1e-6, gt=0.0)
    gt_alpha: float | Literal["auto"] = "auto"        # method skillsd_gt: ground-truth weight in [0, 1]
    paced: PacedConfig | None = None
    srpo: SrpoConfig = Field(default_factory=SrpoConfig)
    sdar: SdarConfig | None = None

    @model_validator(mode="after")
    def _alpha_range(self) -> LossConfig:
        if self.gt_alpha != "auto" and not 0.0 <= self.gt_alpha <= 1.0:
            raise ValueError(f"loss.gt_alpha must be in [0, 1] or 'auto', got {self.gt_alpha}")
        return self


class WatchConfig(StrictModel):
    """The teacher-hacking watch: ``oracle_agreement`` on up to ``oracle_states`` visited states per
    iteration (0: off), a warning when over ``window`` iterations the student-teacher KL keeps
    falling while oracle agreement or held-out success falls; and the teacher's advantage on up to
    ``teacher_states`` visited states the teacher scored (0: off)."""

    oracle_states: int = Field(64, ge=0)
    teacher_states: int = Field(32, ge=0)
    window: int = Field(5, ge=2)


class OptimConfig(StrictModel):
    """AdamW, minibatches per iteration, gradient accumulation over micro-batches, clipping."""

    lr: float = Field(1e-5, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.999)
    max_grad_norm: float = Field(1.0, gt=0.0)
    epochs: int = Field(1, ge=1)                      # passes over each iteration's samples
    num_minibatches: int = Field(1, ge=1)             # optimiser steps per epoch
    micro_batch_size: int = Field(16, ge=1)           # samples per forward (gradient accumulation)
    # padded tokens (rows x longest row) per forward: bounds memory whatever micro_batch_size is;
    # a single sample longer than the budget still gets its own micro-batch
    max_tokens_per_micro_batch: int | None = Field(None, ge=1)
    # per-term gradient norms (GRPO, lambda * SDL) on a probe of the parameters: two extra partial
    # backward passes per micro-batch when both terms are on (see trainer.train.TermGradProbe)
    term_grad_norms: bool = True


class SFTConfig(StrictModel):
    """Supervised warm start on expert trajectories (method ``sft``)."""

    response_template: str = "{action}"
    tasks_per_iteration: int = Field(16, ge=1)


class EvalConfig(StrictModel):
    """Held-out evaluation (:mod:`trainer.evaluation`): one episode per task, plus the dense metric on
    ``dense_states`` held-out states (docs/design.md section 10 asks for >= 256; 0 switches it off)."""

    every: int = Field(10, ge=0)                      # 0: only at the end
    at_end: bool = True                               # False: no final evaluation (a caller evaluates the
                                                      # student itself, as `skillkit run` does)
    temperature: float = Field(0.0, ge=0.0)
    dense_states: int = Field(256, ge=0)
    dense_seed: int = 0                               # which states: the same for every arm of a study


class TrainConfig(StrictModel):
    """A whole training run."""

    name: str = "train"
    method: Method = "skillsd"
    seed: int = 0
    iterations: int = Field(100, ge=1)                # per generation
    generations: int = Field(1, ge=1)                 # anchored generations (teacher.anchor_beta)
    checkpoint_every: int = Field(10, ge=0)           # 0: only at the end
    time_limit_s: float | None = Field(None, gt=0)    # stop after the iteration that passes this wall time
    output_root: str = "runs"
    model: ModelConfig = Field(default_factory=ModelConfig)
    env: EnvConfig = Field(default_factory=EnvConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    sft: SFTConfig = Field(default_factory=SFTConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    watch: WatchConfig = Field(default_factory=WatchConfig)

    @property
    def spec(self) -> MethodSpec:
        """What the method uses."""
        return METHODS[self.method]

    @property
    def teacher_sync_every(self) -> int | None:
        """How often the teacher takes the student's weights (see :class:`TeacherConfig`); None without a teacher."""
        if not self.spec.distill:
            return None
        return self.spec.teacher_sync if self.spec.teacher_sync is not None else self.teacher.sync_every

    @property
    def uses_skills(self) -> bool:
        """Whether the method needs skills (for a teacher or for the student's prompt)."""
        return self.spec.distill or self.spec.skill_in_student

    @model_validator(mode="after")
    def _method_fixes_sync(self) -> TrainConfig:
        fixed = self.spec.teacher_sync
        if fixed is not None and "sync_every" in self.teacher.model_fields_set and self.teacher.sync_every != fixed:
            raise ValueError(f"method {self.method} means teacher.sync_every={fixed}; got {self.teacher.sync_every} "
                             "(use method: skillsd to choose sync_every)")
        return self

    @model_validator(mode="after")
    def _options_need_a_teacher(self) -> TrainConfig:
        loss = self.loss
        options = {"generations > 1": self.generations > 1, "loss.paced": loss.paced is not None,
                   "loss.srpo": loss.srpo.enabled, "loss.sdar": loss.sdar is not None}
        if not self.spec.distill and any(options.values()):
            used = [k for k, on in options.items() if on]
            raise ValueError(f"{', '.join(used)} change the distillation term; method {self.method} has none")
        if loss.srpo.enabled and not self.spec.rl:
            raise ValueError(f"loss.srpo routes successes to the GRPO term; method {self.method} has none")
        if loss.srpo.uncertainty_weight > 0 and not loss.srpo.enabled:
            raise ValueError("loss.srpo.uncertainty_weight needs loss.srpo.enabled: true")
        return self


def load_train_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Load a training config YAML with ``key=value`` overrides (dots for nested keys)."""
    return load_config(TrainConfig, path, overrides)
