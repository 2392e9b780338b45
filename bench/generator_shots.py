"""Write a few-shot prompt template whose worked examples come from the training generator.

The examples are gold solutions of synthetic problems of seed 0 (training data: train-prm
reads the same problems; no held-out set or development split uses seed 0): the first problem
of each of the K most frequent calculation shapes (the operators of its gold steps in order,
e.g. "* +" for a multiplication then an addition): with the default 8, the one- and
two-calculation solutions the generator makes most often, each ending "The answer is N.".
The system prompt is the default template's.

    python bench/generator_shots.py [--shapes 8] [--name eight_shot]
"""

from __future__ import annotations

import argparse
import collections
import json
import re

from tts_explorer.assets import asset
from tts_explorer.prompts import DEFAULT_TEMPLATE, STEP_SEPARATOR, load_template
from tts_explorer.training.synth import generate

CALC = re.compile(r"\d ([-+*/]) \d+ =")


def shape(steps: tuple[str, ...]) -> str:
    return " ".join("".join(CALC.findall(s)) or "?" for s in steps[:-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shapes", type=int, default=8, help="how many examples: one per most frequent shape")
    parser.add_argument("--pool", type=int, default=3000, help="seed-0 problems the shapes are counted over")
    parser.add_argument("--name", default="eight_shot")
    args = parser.parse_args()
    problems = generate(args.pool, 0)
    counts = collections.Counter(shape(p.steps) for p in problems)
    wanted = [s for s, _ in counts.most_common(args.shapes)]
    first = {}
    for p in problems:
        first.setdefault(shape(p.steps), p)
    examples = [
        {"question": first[s].question, "solution": STEP_SEPARATOR.join(first[s].steps), "source": first[s].id}
        for s in sorted(wanted, key=lambda s: first[s].id.rsplit("-", 1)[1].zfill(6))
    ]
    template = {"system": load_template(DEFAULT_TEMPLATE).system, "examples": examples}
    path = asset("prompts", f"{args.name}.json")
    path.write_text(json.dumps(template, indent=1) + "\n")
    for s in wanted:
        print(f"{counts[s]:>5}  {s:<8} {first[s].id}: {first[s].question}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
