"""Multi-turn rollouts: episodes of any text environment, one training sample per turn.

Layout (verl-agent, docs/design.md section 6): at every turn the prompt is the chat template over
``[system: environment instructions + task] + last k (observation, action) turns + current
observation``; the response is that turn's generated tokens. A :class:`TurnSample` keeps the exact
token ids the model saw and produced, the sampling log-probs (the "old policy") and, once the
episode group is complete, the episode's group-normalised return as its advantage.

The episodes are played by the one loop, :mod:`environments.episodes`: all live episodes of a
batch are generated together, one ``backend.generate`` call per turn, so the backend (HF batched
decoding, or vLLM) sees one large batch. Environments are stepped through an
:class:`~environments.episodes.EnvPool` (local objects, or Ray actors from :mod:`trainer.ray_rollout`).
The prompt layout is :mod:`skillkit.core.prompts`, shared with the inference agent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from environments.base import run_expert_episode
from environments.episodes import ChatPolicy, EnvPool, Episode, finish_episodes, play_episodes
from skillkit.core.llm.base import Completion, LLMBackend, SamplingParams
from skillkit.core.prompts import SkillPosition, build_messages
from skillkit.core.schemas import Trajectory
from trainer.losses import group_advantages


def chat_token_ids(tokenizer: Any, chat: list[dict[str, str]]) -> list[int]:
    """Token ids of a chat exactly as :class:`skillkit.core.llm.hf.HFBackend` feeds it to the model."""
    # transformers loads only when a chat is tokenized
    from skillkit.core.llm.hf import render_prompt

    return tokenizer(render_prompt(tokenizer, chat), add_special_tokens=False)["input_ids"]


# ---------------------------------------------------------------------------------------------
# Samples and batches
# ---------------------------------------------------------------------------------------------

@dataclass
class TurnSample:
    """One training sample: one turn of one episode, with everything the losses need."""

    prompt_ids: list[int]
    response_ids: list[int]
    old_logprobs: list[float]
    messages: list[dict[str, str]]      # the plain chat (the teacher inserts its skill into it)
    task_id: str
    episode: int                        # index of the episode in its batch
    group: int                          # index of the task group (G episodes share one)
    turn: int
    advantage: float = 0.0
    episode_return: float = 0.0
    success: bool = False               # the episode succeeded (SRPO routes on it)
    skill_name: str | None = None       # the skill the teacher scores with, if any
    teacher_logprobs: list[float] | None = None
    teacher_entropy: list[float] | None = None      # the teacher's next-token entropy per response token
    distill_weight: float = 1.0                     # weight of this sample's distillation term (PACED)
    oracle_targets: list[list[int]] | None = None   # ground-truth guidance: token ids of each optimal action


@dataclass
class RolloutBatch:
    """Episodes of one collection round and their per-turn samples."""

    trajectories: list[Trajectory]
    samples: list[TurnSample]
    generated_tokens: int = 0
    seconds: float = 0.0
    groups: list[list[int]] = field(default_factory=list)   # episode indices of each group

    @property
    def returns(self) -> list[float]:
        return [t.total_reward for t in self.trajectories]

    @property
    def successes(self) -> list[bool]:
        return [t.success for t in self.trajectories]


def collect_rollouts(
    backend: LLMBackend,
    pool: EnvPool,
    task_ids: Sequence[str],
    group_size: int,
    sampling: SamplingParams,
    window: int = 2,
    seed: int = 0,
    student_skills: dict[str, str] | None = None,
    skill_position: SkillPosition = "user",
    max_turns: int | None = None,
    id_prefix: str = "ep",
    env_name: str = "",
) -> RolloutBatch:
    """Play ``group_size`` episodes of every task, all live episodes generated together each turn.

    The loop is :func:`environments.episodes.play_episodes` with a :class:`~environments.episodes.ChatPolicy`
    whose ``on_generate`` hook records every turn as a :class:`TurnSample`. ``student_skills`` (task
    id -> skill text) puts a skill into the *student's* prompt (the skill-in-prompt baseline); the
    recorded ``messages`` then include it. Sampling at turn ``k`` uses seed ``seed * 1000 + k`` so
    that a batch is reproducible. Episodes end when the environment says ``done`` or after
    ``max_turns`` turns (default: the environment's ``max_steps``). Advantages are left at 0; see
    :func:`assign_group_advantages`.
    """
    t0 = time.perf_counter()
    slot_tasks = [t for t in task_ids for _ in range(group_size)]
    samples: list[TurnSample] = []

    def record(live: list[Episode], chats: list[list[dict[str, str]]], completions: list[Completion]) -> None:
        for ep, chat, comp in zip(live, chats, completions):
            samples.append(TurnSample(
                prompt_ids=list(comp.prompt_token_ids), response_ids=list(comp.token_ids),
                old_logprobs=list(comp.logprobs), messages=chat, task_id=ep.task_id, episode=ep.slot,
                group=ep.slot // group_size, turn=ep.turn,
            ))

    def skills(ep: Episode) -> tuple[list[str], str]:
        return [], (student_skills or {}).get(ep.task_id, "")

    policy = ChatPolicy(backend, sampling, window, seed, skill_position, on_generate=record)
    episodes = play_episodes(pool, slot_tasks, policy, skills if student_skills else None, max_turns, id_prefix,
                             env_name)
    trajectories = finish_episodes(pool, episodes)
    for s in samples:
        s.episode_return = trajectories[s.episode].total_reward
        s.success = trajectories[s.episode].success
    groups = [list(range(g * group_size, (g + 1) * group_size)) for g in range(len(task_ids))]
    return RolloutBatch(trajectories, samples, sum(len(s.response_ids) for s in samples),
                        time.perf_counter() - t0, groups)


def assign_group_advantages(batch: RolloutBatch, eps: float = 1e-6) -> torch.Tensor:
    """Set every turn's advantage to its episode's group-normalised return; returns the episode advantages."""
    returns = torch.tensor(batch.returns, dtype=torch.float64)
    group_of = torch.empty(len(batch.trajectories), dtype=torch.long)
    for g, members in enumerate(batch.groups):
        group_of[members] = g
    adv = group_advantages(returns, group_of, eps)
    for s in batch.samples:
        s.advantage = float(adv[s.episode])
    return adv


# ---------------------------------------------------------------------------------------------
# Expert (solver) trajectories -> SFT samples
# ---------------------------------------------------------------------------------------------

def expert_trajectories(make_env: Callable[[], Any], task_ids: Sequence[str],
                        response_template: str = "{action}") -> list[Trajectory]:
    """Replay each task's ``expert_actions`` (e.g. the Sokoban solver's moves) as recorded episodes;
    tasks without an expert solution are skipped."""
    env = make_env()
    try:
        episodes = [run_expert_episode(env, task_id, response_template) for task_id in task_ids]
    finally:
        env.close()
    return [t for t in episodes if t is not None]


def supervised_samples(trajectories: Sequence[Trajectory], tokenizer: Any, window: int = 2) -> list[TurnSample]:
    """One supervised sample per turn: the chat the policy would have seen, the action + end-of-turn.

    The chats are rebuilt exactly as :func:`collect_rollouts` builds them (system text from the
    trajectory's ``metadata["instructions"]``); the response is the action text tokenized after the
    generation prompt, followed by the end-of-turn (EOS) token the policy must learn to emit.
    """
    samples = []
    for e, traj in enumerate(trajectories):
        obs, history = traj.initial_observation, []
        for turn, step in enumerate(traj.turns):
            chat = build_messages(traj.metadata.get("instructions", ""), traj.instruction, history, obs, window)
            prompt_ids = chat_token_ids(tokenizer, chat)
            response_ids = tokenizer(step.action, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            samples.append(TurnSample(prompt_ids, response_ids, [0.0] * len(response_ids), chat, traj.task_id,
                                      episode=e, group=e, turn=turn, episode_return=traj.total_reward))
            history.append((obs, step.action))
            obs = step.observation
    return samples


# ---------------------------------------------------------------------------------------------
# Collation
# ---------------------------------------------------------------------------------------------

def collate(samples: Sequence[TurnSample], pad_id: int, prompts: Sequence[list[int]] | None = None,
            device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Right-padded ``[B, T]`` tensors of ``prompt + response`` for a list of samples.

    ``mask`` is 1 on response tokens only. ``old_logprobs`` / ``teacher_logprobs`` /
    ``teacher_entropy`` are placed at the response positions (entry t = log p(ids[t] | ids[<t]));
    ``sdl_mask`` is ``mask`` restricted to samples that have teacher scores; ``success`` and
    ``sdl_weight`` are per sample ``[B]``. ``prompts`` replaces the prompt ids (teacher scoring).
    """
    prompts = prompts if prompts is not None else [s.prompt_ids for s in samples]
    width = max(len(p) + len(s.response_ids) for p, s in zip(prompts, samples))
    n = len(samples)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    attn = torch.zeros((n, width), dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.float32)
    old = torch.zeros((n, width), dtype=torch.float32)
    teacher = torch.zeros((n, width), dtype=torch.float32)
    entropy = torch.zeros((n, width), dtype=torch.float32)
    has_teacher = torch.zeros((n, 1), dtype=torch.float32)
    for row, (p, s) in enumerate(zip(prompts, samples)):
        a, b = len(p), len(p) + len(s.response_ids)
        ids[row, :a] = torch.tensor(p, dtype=torch.long)
        ids[row, a:b] = torch.tensor(s.response_ids, dtype=torch.long)
        attn[row, :b] = 1
        mask[row, a:b] = 1
        old[row, a:b] = torch.tensor(s.old_logprobs, dtype=torch.float32)
        if s.teacher_logprobs is not None:
            teacher[row, a:b] = torch.tensor(s.teacher_logprobs, dtype=torch.float32)
            has_teacher[row] = 1
        if s.teacher_entropy is not None:
            entropy[row, a:b] = torch.tensor(s.teacher_entropy, dtype=torch.float32)
    adv = torch.tensor([s.advantage for s in samples], dtype=torch.float32)
    batch = {"input_ids": ids, "attention_mask": attn, "mask": mask, "old_logprobs": old,
             "teacher_logprobs": teacher, "sdl_mask": mask * has_teacher, "advantages": adv,
             "teacher_entropy": entropy, "success": torch.tensor([float(s.success) for s in samples]),
             "sdl_weight": torch.tensor([s.distill_weight for s in samples], dtype=torch.float32)}
    return {k: v.to(device) for k, v in batch.items()}


def response_logprobs(logp: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[list[float]]:
    """Per-sample lists of the log-probs at response positions (inverse of :func:`collate`)."""
    out = []
    for row in range(logp.shape[0]):
        out.append(logp[row][batch["mask"][row].bool()].tolist())
    return out
