"""Train a student with Skill-SD from Python: L = L_GRPO + lambda * L_SDL, teacher = the same weights
with a skill in the prompt.

    python examples/train_skillsd.py [--model smollm2-135m] [--iterations 2]
"""

from __future__ import annotations

import argparse
import json

from trainer.config import load_train_config
from trainer.train import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--output-root", default="runs")
    args = parser.parse_args()

    cfg = load_train_config("configs/sokoban_skillsd.yaml", [
        f"model.name={args.model}", f"iterations={args.iterations}", f"output_root={args.output_root}",
        "env.options.max_steps=6", "env.max_eval_tasks=4", "rollout.tasks_per_iteration=2",
        "rollout.group_size=2", "rollout.max_turns=3", "rollout.max_new_tokens=8", "eval.every=0",
        "checkpoint_every=0",
    ])
    print(f"method {cfg.method}: lambda={cfg.loss.lambda_sdl}, teacher sync_every={cfg.teacher_sync_every}, "
          f"skill in the {cfg.teacher.skill_position} message")
    run_dir = train(cfg)
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        print({k: row.get(k) for k in ("iteration", "loss_grpo", "loss_sdl", "kl_student_teacher",
                                       "reward_mean", "eval_success_rate") if k in row})
    print("student weights:", run_dir / "final")


if __name__ == "__main__":
    main()
