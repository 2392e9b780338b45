"""The policy's own steps for a PRM: a rollout tree per problem (N leaves, N/M first steps with
M rollouts each), sampled with a prompt template and the reference answer, several problems at
once where the policy serves searches together, kept in a JSONL file as they are made so a
stopped run resumes; and the progress bars and log lines the training stages share (on stderr)."""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from ..config import SearchConfig
from ..data import jsonl_lines
from ..runs import RunRequest, ScorerChoice, search_events
from ..tree import SearchTree
from ..treefile import read_tree

ROLLOUT_SCORER = ScorerChoice("arithmetic")  # the rollout tree runs no scorer; the name is only recorded


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bar(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, dynamic_ncols=True)


def rollout_trees(
    policy, items: list[tuple[str, str, str]], cfg, path: Path, desc: str, n: int, m: int, seed: int
) -> list[SearchTree]:
    """A rollout tree per (id, question, answer), sampled with cfg.template, read from `path`
    where already made, else made (cfg.parallel trees at once, each with its own seed) and
    appended to it in the items' order (so a stopped run resumes)."""
    done: dict[str, SearchTree] = {}
    if path.exists():
        for line in jsonl_lines(path.read_text(encoding="utf-8")):
            if line.strip():
                row = json.loads(line)
                done[row["id"]] = read_tree(row["tree"])
    config = SearchConfig(
        strategy="rollouts",
        n=n,
        beam_width=m,
        max_steps=cfg.max_steps,
        step_tokens=cfg.step_tokens,
        final_tokens=cfg.final_tokens,
        seed=seed,
    )
    missing = [(index, item) for index, item in enumerate(items) if item[0] not in done]

    def grow(job: tuple[int, tuple[str, str, str]]) -> SearchTree:
        index, (_, question, answer) = job
        request = RunRequest(
            question, answer, replace(config, seed=seed + index), ROLLOUT_SCORER, cfg.model, cfg.template
        )
        tree = request.new_tree(policy.name)
        for _ in search_events(tree, policy, request):
            pass
        return tree

    # several searches share the engine's decode loop: its batches are fuller (a matrix product
    # over more rows rounds a few logits' last bits otherwise, so a sample can differ from one
    # made alone)
    workers = cfg.parallel if getattr(policy, "shares_searches", False) else 1
    pool = ThreadPoolExecutor(max(workers, 1), thread_name_prefix="rollouts")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "a", encoding="utf-8") as out, bar(len(items), desc) as progress:
            progress.update(len(items) - len(missing))
            for (_, (key, _, _)), tree in zip(missing, pool.map(grow, missing)):
                done[key] = tree
                out.write(json.dumps({"id": key, "tree": tree.to_json()}) + "\n")
                out.flush()
                progress.update(1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [done[key] for key, _, _ in items]
