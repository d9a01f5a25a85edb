"""Give skills learnt from episodes the routing text of the situation they were learnt in.

When an environment's tasks share one instruction (Sokoban), a per-task skill's own words cannot
tell the router which task it belongs to. The episode loop records the environment's routing query
of each episode's first state (``trajectory.metadata["routing_query"]``, set only when the
environment overrides the default instruction + observation); :func:`attach_routing_text` copies it
to the skills summarised from those episodes, where the router matches it (``SkillBase.routing_text``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from skillkit.core.schemas import SkillBase, Trajectory


def attach_routing_text(skills: Sequence[SkillBase], trajectories: Iterable[Trajectory]) -> int:
    """Set ``routing_text`` of each skill without one from its first source trajectory (by id, else by its
    first source task) that recorded a routing query; returns how many skills got one."""
    by_id: dict[str, str] = {}
    by_task: dict[str, str] = {}
    for traj in trajectories:
        query = str(traj.metadata.get("routing_query") or "")
        if query:
            by_id.setdefault(traj.id, query)
            by_task.setdefault(traj.task_id, query)
    count = 0
    for skill in skills:
        if skill.routing_text:
            continue
        ids = getattr(skill, "source_trajectory_ids", None) or []
        found = next((by_id[i] for i in ids if i in by_id), None)
        if found is None:
            found = next((by_task[t] for t in skill.source_tasks if t in by_task), None)
        if found:
            skill.routing_text = found
            count += 1
    return count
