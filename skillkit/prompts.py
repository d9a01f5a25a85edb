"""How an agent's chat prompt is laid out: instructions, optional skills, a window of recent turns.

One builder serves the inference agent and the trainer's student and teacher prompts, so the
student sees exactly what the agent sees and the teacher differs only by the inserted skill.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

SkillPosition = Literal["system", "user"]


def format_skills(skill_texts: Sequence[str], header: str = "Skills that may help:") -> str:
    """Render skill texts as one numbered block."""
    if not skill_texts:
        return ""
    parts = [header] + [f"[{i}] {text.strip()}" for i, text in enumerate(skill_texts, 1)]
    return "\n".join(parts)


def build_messages(
    instructions: str,
    observation: str,
    history: Sequence[tuple[str, str]] = (),
    window: int = 2,
    skills: str = "",
    skill_position: SkillPosition = "user",
) -> list[dict[str, str]]:
    """Chat messages for one agent turn.

    ``history`` holds (action, observation) pairs of earlier turns; only the last ``window`` are
    shown. ``skills`` (already formatted text) goes at the end of the system message or at the top
    of the user message: small models copy more from the user message (DESIGN.md section 6).
    """
    system = instructions.strip()
    if skills and skill_position == "system":
        system += "\n\n" + skills.strip()
    user_parts = []
    if skills and skill_position == "user":
        user_parts.append(skills.strip())
    recent = list(history)[-window:] if window > 0 else []
    if recent:
        lines = ["Recent turns:"]
        for action, result in recent:
            lines.append(f"Action: {action.strip()}\nResult: {result.strip()}")
        user_parts.append("\n".join(lines))
    user_parts.append(f"Current state:\n{observation.strip()}\nYour action:")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(user_parts)}]
