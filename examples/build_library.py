"""Build a skill knowledge base from your own episodes, search it, and export it as SKILL.md folders.

    python examples/build_library.py --out /tmp/my-library [--tasks 12]
"""

from __future__ import annotations

import argparse
import random

import environments
from environments.base import run_episode
from skillkit.skills.extract import Extractor
from skillkit.skills.library import SkillLibrary
from skillkit.skills.skillmd import export_skills
from skillkit.skills.summarize import Summarizer, group_by_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="library folder to create")
    parser.add_argument("--tasks", type=int, default=12, help="Sokoban train levels to play")
    parser.add_argument("--tries", type=int, default=4, help="episodes per level")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--embedder", default="minilm", help="minilm (default) or hashing (no model)")
    args = parser.parse_args()

    # 1. Experience: your agent's own episodes, recorded by `run_episode(env, policy, task_id)` (policy:
    #    observation text -> action text). A seeded random player stands in for your agent here; skills
    #    are learned from what it did (what worked, its mistakes), never from a solver.
    rng = random.Random(args.seed)
    env = environments.make("sokoban", variant="1box", max_steps=30)
    episodes = [run_episode(env, lambda _obs: rng.choice(["Up", "Down", "Left", "Right"]), task_id,
                            episode_id=f"{task_id}-{k}")
                for task_id in env.task_ids("train")[: args.tasks] for k in range(args.tries)]
    print(f"{sum(e.success for e in episodes)} of {len(episodes)} episodes solved their level")

    # 2. Trajectory skills (Summarizer(backend) uses an LLM; None = the deterministic summarizer),
    #    then planning / functional / atomic skills with ADD / MODIFY / KEEP and duplicate merging.
    summaries = Summarizer(None).summarize_many(list(group_by_task(episodes).values()))
    library = SkillLibrary.create(args.out, embedder=args.embedder)
    report = Extractor(None).update(library, episodes, extra=summaries, save=True)
    print("decisions per tier:", report.counts())
    print("library:", library.stats()["tiers"])

    # 3. Use it: search, and export every skill as <out>/skills/<name>/SKILL.md.
    for skill, score in library.search("push the box up onto the target", k=3):
        print(f"{score:.3f}  {skill.tier:<10} {skill.name}")
    written = export_skills(library, f"{args.out}/skills")
    print(f"exported {len(written)} SKILL.md folders")


if __name__ == "__main__":
    main()
