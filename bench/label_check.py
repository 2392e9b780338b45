"""The gold-aligned labeller checked by hand: a seeded sample of the policy's own steps from
train-prm's rollout trees, each with its problem, the gold solution, the path before it and
the label tts_explorer/training/gold.py gives it; a person writes their own label ("hand": 1
right, 0 wrong, judged as the labeller's rule says: the arithmetic holds and every result is
a value of the gold solution or the problem, an answer must be the reference, and a step after
a wrong one is wrong) and the script reports the agreement.

    python bench/label_check.py sample --work artifacts/train-prm --out assets/prm/label-check.jsonl --count 120
    (fill in "hand" in each row)
    python bench/label_check.py score assets/prm/label-check.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from tts_explorer.prompts import DEFAULT_TEMPLATE
from tts_explorer.training.gold import gold_labels
from tts_explorer.training.pipeline import TrainConfig, problems
from tts_explorer.treefile import read_tree


def sample(work: Path, out: Path, count: int, seed: int) -> None:
    cfg = TrainConfig()
    synthetic, gsm8k = problems(cfg)
    gold = {f"synthetic:{q}": (s, a) for q, s, a in synthetic} | {f"gsm8k:{q}": (s, a) for q, s, a in gsm8k}
    rows = []
    for line in (work / f"rollouts-{DEFAULT_TEMPLATE}.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        tree = read_tree(record["tree"])
        steps, answer = gold[record["id"]]
        for leaf in (n for n in tree if n.id and not n.children):
            path = [n.text for n in tree.path(leaf.id)]
            labels = gold_labels(tree.question, steps, answer, path)
            rows += [
                (record["id"], tree.question, steps, answer, path[:k], path[k], labels[k]) for k in range(len(path))
            ]
    rng = random.Random(seed)
    # as many right as wrong steps, half of them from GSM8K, so the check sees every kind
    chosen = []
    for source in ("synthetic", "gsm8k"):
        for label in (1.0, 0.0):
            pool = [r for r in rows if r[0].startswith(source) and r[6] == label]
            chosen += rng.sample(pool, min(len(pool), count // 4))
    with out.open("w", encoding="utf-8") as handle:
        for key, question, steps, answer, before, step, label in chosen:
            handle.write(
                json.dumps(
                    {
                        "source": key.split(":")[0],
                        "question": question,
                        "gold": steps,
                        "answer": answer,
                        "before": before,
                        "step": step,
                        "labeller": label,
                        "hand": None,
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
    print(f"wrote {len(chosen)} steps to {out}: fill in 'hand' (1 right, 0 wrong)")


def score(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    checked = [r for r in rows if r["hand"] is not None]
    agree = sum(float(r["hand"]) == float(r["labeller"]) for r in checked)
    print(f"{len(checked)} steps checked by hand; the labeller agrees on {agree} ({100 * agree / len(checked):.1f}%)")
    for source in ("synthetic", "gsm8k"):
        part = [r for r in checked if r["source"] == source]
        if part:
            same = sum(float(r["hand"]) == float(r["labeller"]) for r in part)
            print(f"  {source}: {same} of {len(part)}")
            for label, word in ((1.0, "right"), (0.0, "wrong")):
                said = [r for r in part if float(r["labeller"]) == label]
                if said:
                    held = sum(float(r["hand"]) == label for r in said)
                    print(f"    labelled {word}: {held} of {len(said)} hold ({100 * held / len(said):.0f}%)")
    for r in checked:
        if float(r["hand"]) != float(r["labeller"]):
            print(f"  disagree (labeller {r['labeller']}, hand {r['hand']}): {r['step'][:100]!r} ({r.get('note', '')})")


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("sample")
    make.add_argument("--work", default="artifacts/train-prm")
    make.add_argument("--out", required=True)
    make.add_argument("--count", type=int, default=120)
    make.add_argument("--seed", type=int, default=0)
    check = commands.add_parser("score")
    check.add_argument("path")
    args = parser.parse_args()
    if args.command == "sample":
        sample(Path(args.work), Path(args.out), args.count, args.seed)
    else:
        score(Path(args.path))


if __name__ == "__main__":
    main()
