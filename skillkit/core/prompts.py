"""How an agent's chat prompt is laid out: instructions + task, a window of recent turns, the state.

One builder serves the inference agent and the trainer's student and teacher prompts, so the
student sees exactly what the agent sees and the teacher differs only by the inserted skill.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

SkillPosition = Literal["system", "user"]
SKILL_HEADER = "A skill from past experience that may help with this task:"


def build_messages(instructions: str, task_instruction: str, history: Sequence[tuple[str, str]],
                   observation: str, window: int) -> list[dict[str, str]]:
    """The chat for one turn: system (instructions + task), the last ``window`` turns, the observation.

    ``history`` holds ``(observation, action)`` pairs of the earlier turns, oldest first; each
    becomes a user message (the observation) and an assistant message (the action taken).
    """
    system = instructions.strip()
    if task_instruction.strip():
        system += f"\n\nTask: {task_instruction.strip()}"
    messages = [{"role": "system", "content": system}]
    for obs, action in (history[-window:] if window > 0 else []):
        messages.append({"role": "user", "content": obs})
        messages.append({"role": "assistant", "content": action})
    messages.append({"role": "user", "content": observation})
    return messages


def insert_skill(messages: list[dict[str, str]], skill_text: str, position: SkillPosition = "user",
                 header: str = SKILL_HEADER) -> list[dict[str, str]]:
    """A copy of ``messages`` with the skill inserted: before the current observation (``user``,
    default: the small embedded model copies from there more reliably, docs/design.md section 6) or at
    the end of the system message (``system``). Empty ``skill_text`` returns an unchanged copy."""
    if position not in ("user", "system"):
        raise ValueError(f"skill position must be 'user' or 'system', got {position!r}")
    out = [dict(m) for m in messages]
    if not skill_text.strip():
        return out
    block = f"{header}\n{skill_text.strip()}" if header else skill_text.strip()
    if position == "system":
        out[0]["content"] = f"{out[0]['content']}\n\n{block}"
    else:
        out[-1]["content"] = f"{block}\n\n{out[-1]['content']}"
    return out


def format_skills(skill_texts: Sequence[str]) -> str:
    """Several skill texts as one numbered block (a single skill is shown as is)."""
    if len(skill_texts) == 1:
        return skill_texts[0].strip()
    return "\n".join(f"[{i}] {text.strip()}" for i, text in enumerate(skill_texts, 1))
