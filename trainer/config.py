"""The training config: one YAML file = one reproducible run; ``method`` switches the algorithm.

Methods (DESIGN.md section 6):

=========================  ======================================================================
``grpo``                   reward only: ``L = L_GRPO``
``skillsd``                ``L = L_GRPO + lambda * L_SDL``, teacher = current student + skill
``skillsd_frozen``         same, teacher = a copy of the initial weights + skill (ablation)
``opd``                    on-policy distillation: ``L = L_SDL`` (teacher with skill, no reward)
``skill_in_prompt_grpo``   GRPO where the *student* sees the skill in its own prompt
``sft``                    supervised warm start on the environment's expert (solver) trajectories
=========================  ======================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from skillkit.core.config import StrictModel, load_config

Method = Literal["grpo", "skillsd", "skillsd_frozen", "opd", "skill_in_prompt_grpo", "sft"]


@dataclass(frozen=True)
class MethodSpec:
    """What a method uses: the reward term, the distillation term, a teacher, skills in the student prompt."""

    rl: bool
    distill: bool
    teacher_mode: str | None      # "dynamic" / "frozen" / None (no teacher)
    skill_in_student: bool
    sft: bool


METHODS: dict[str, MethodSpec] = {
    "grpo": MethodSpec(rl=True, distill=False, teacher_mode=None, skill_in_student=False, sft=False),
    "skillsd": MethodSpec(rl=True, distill=True, teacher_mode="dynamic", skill_in_student=False, sft=False),
    "skillsd_frozen": MethodSpec(rl=True, distill=True, teacher_mode="frozen", skill_in_student=False, sft=False),
    "opd": MethodSpec(rl=False, distill=True, teacher_mode="dynamic", skill_in_student=False, sft=False),
    "skill_in_prompt_grpo": MethodSpec(rl=True, distill=False, teacher_mode=None, skill_in_student=True, sft=False),
    "sft": MethodSpec(rl=False, distill=False, teacher_mode=None, skill_in_student=False, sft=True),
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

    backend: Literal["hf"] = "hf"                     # the live weights; see docs/readme/trainer.md for vLLM
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

    ``skills``: ``library`` (the skill library with UCB selection, seeded from expert trajectories
    when ``seed_from_expert``) or ``expert`` (one summary of the expert trajectory per task, no
    library) or ``none``.
    """

    mode: Literal["dynamic", "frozen"] = "dynamic"    # the method can override (skillsd_frozen)
    skill_position: Literal["user", "system"] = "user"
    skills: Literal["library", "expert", "none"] = "library"
    library_path: str | None = None                   # default: <run>/library
    library_embedder: str = "minilm"                  # "hashing" needs no model (fast smoke tests)
    bank_size: int = Field(4, ge=1)                   # skills per task that UCB chooses from
    seed_from_expert: bool = True
    summarize: bool = True                            # summarise new successful episodes into the library
    ucb_c: float = Field(1.0, ge=0.0)
    batch_size: int = Field(16, ge=1)


class LossConfig(StrictModel):
    """Loss hyper-parameters (``lambda_sdl`` is the paper's lambda, best 0.001)."""

    lambda_sdl: float = Field(0.001, ge=0.0)
    clip_eps: float = Field(0.2, gt=0.0)
    rho_max: float = Field(2.0, gt=0.0)
    adv_eps: float = Field(1e-6, gt=0.0)


class OptimConfig(StrictModel):
    """AdamW, minibatches per iteration, gradient accumulation over micro-batches, clipping."""

    lr: float = Field(1e-5, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.999)
    max_grad_norm: float = Field(1.0, gt=0.0)
    epochs: int = Field(1, ge=1)                      # passes over each iteration's samples
    num_minibatches: int = Field(1, ge=1)             # optimiser steps per epoch
    micro_batch_size: int = Field(16, ge=1)           # samples per forward (gradient accumulation)


class SFTConfig(StrictModel):
    """Supervised warm start on expert trajectories (method ``sft``)."""

    response_template: str = "{action}"
    tasks_per_iteration: int = Field(16, ge=1)


class EvalConfig(StrictModel):
    """Held-out evaluation (:mod:`trainer.evaluation`): one episode per task, plus the dense metric on
    ``dense_states`` held-out states (DESIGN.md section 10 asks for >= 256; 0 switches it off)."""

    every: int = Field(10, ge=0)                      # 0: only at the end
    temperature: float = Field(0.0, ge=0.0)
    dense_states: int = Field(256, ge=0)
    dense_seed: int = 0                               # which states: the same for every arm of a study


class TrainConfig(StrictModel):
    """A whole training run."""

    name: str = "train"
    method: Method = "skillsd"
    seed: int = 0
    iterations: int = Field(100, ge=1)
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

    @property
    def spec(self) -> MethodSpec:
        """What the method uses."""
        return METHODS[self.method]

    @property
    def teacher_mode(self) -> str | None:
        """``frozen`` for skillsd_frozen (or teacher.mode=frozen), ``dynamic`` otherwise; None without a teacher."""
        if self.spec.teacher_mode is None:
            return None
        return "frozen" if "frozen" in (self.spec.teacher_mode, self.teacher.mode) else "dynamic"

    @property
    def uses_skills(self) -> bool:
        return self.spec.distill or self.spec.skill_in_student


def load_train_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Load a training config YAML with ``key=value`` overrides (dots for nested keys)."""
    return load_config(TrainConfig, path, overrides)
