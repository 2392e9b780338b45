"""The `tts-explorer` command: the web page, searches, evaluations, PRM training and benchmarks.

`app` serves the page; `serve` an OpenAI-compatible endpoint; `solve` searches one problem
and prints its tree; `eval` runs strategies over a data set; `plot` draws its scaling curves; `prm-data` builds
ProcessBench-style data from GSM8K; `prm-eval` scores a PRM on such data; `train-prm`
trains the shipped probe PRM; `bench` measures the engine against the naive way.

Every bad input ends with a one-line `error: ...` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from .assets import GSM8K_TRAIN
from .config import SearchConfig
from .data import read_problems
from .errors import UserError
from .policy.loading import EMBEDDED, load_policy
from .prompts import DEFAULT_TEMPLATE, load_template
from .report import format_compute, format_tree
from .runs import RunRequest, ScorerChoice, root_prompt, score_samples, search_events
from .scorers import DEFAULT_SCORER, FALLBACK_SCORER, check_scorer_name, default_scorer
from .selection import AGGREGATIONS, SELECTIONS
from .strategies import STRATEGIES, get_strategy

# the command line's choices from the registries; each flag's help from the settings' own field
REGISTRIES = {"aggregation": AGGREGATIONS, "selection": SELECTIONS}
MAX_PARALLEL = 64  # eval and train-prm --parallel: problems searched at once


def _check_parallel(value: int) -> None:
    if not 1 <= value <= MAX_PARALLEL:
        raise UserError(f"--parallel must be between 1 and {MAX_PARALLEL}")


def _search_args(parser: argparse.ArgumentParser) -> None:
    """Flags for every search setting (SearchConfig's fields but the strategy and N, which each
    command takes its own way), the scorer, the model and the prompt."""
    for setting in fields(SearchConfig):
        if setting.name in ("strategy", "n"):
            continue
        kind = type(setting.default) if setting.default is not None else int
        registry = REGISTRIES.get(setting.name)
        extra = ("; " + ", ".join(f"{k}: {v.help}" for k, v in registry.items())) if registry else ""
        parser.add_argument(
            "--" + setting.name.replace("_", "-"),
            type=kind,
            default=setting.default,
            help=f"{setting.metadata['help']} (default: {setting.default}){extra}",
        )
    parser.add_argument(
        "--scorer",
        default=None,
        help=f"step scorer (PRM) name (default: {DEFAULT_SCORER} on the embedded policy, else {FALLBACK_SCORER})",
    )
    parser.add_argument(
        "--scorer-model", default=None, help="model path or hub id for a learned PRM format (or another judge model)"
    )
    parser.add_argument("--trust-remote-code", action="store_true", help="allow a PRM's own modelling code")
    parser.add_argument(
        "--model",
        default=EMBEDDED,
        help="'embedded', a GGUF file, a model directory, a hub id or an OpenAI-compatible server's URL",
    )
    parser.add_argument(
        "--template",
        default=None,
        help=f"prompt template in assets/prompts (default: the model's own: {DEFAULT_TEMPLATE} for the embedded "
        "model, a few-shot completion prompt for a base model)",
    )
    parser.add_argument(
        "--auto-table",
        default=None,
        help="compute-optimal table for --strategy auto (default: assets/scaling/compute_optimal.json)",
    )


def _config(args, strategy: str, n: int) -> SearchConfig:
    if args.template is not None:
        load_template(args.template)  # an unknown template is refused before any model loads
    settings = {f.name: getattr(args, f.name) for f in fields(SearchConfig) if f.name not in ("strategy", "n")}
    return SearchConfig(strategy=strategy, n=n, **settings)


def _scorer(args, models) -> ScorerChoice:
    return ScorerChoice.of(args.scorer or default_scorer(models), args.scorer_model, args.trust_remote_code)


def cmd_solve(args) -> int:
    request = RunRequest(
        args.problem,
        args.answer,
        _config(args, args.strategy, args.n),
        _scorer(args, [args.model]),
        args.model,
        args.template,
        args.auto_table,
    )
    policy = load_policy(args.model)
    tree = request.new_tree(policy.name)
    done = None
    for event in search_events(tree, policy, request):
        done = event  # the last event: Done
    print(format_tree(tree))
    verdict = "" if tree.meta["correct"] is None else f"  ({'right' if tree.meta['correct'] else 'wrong'})"
    if "auto" in tree.meta:
        print(f"auto: {tree.meta['auto']['reason']}")
    print(f"answer: {done.answer}{verdict}")
    print(format_compute(tree.meta["compute"]))
    if args.out:
        Path(args.out).write_text(tree.to_json(indent=1))
        print(f"tree written to {args.out}")
    return 0


def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values:
        raise UserError(f"{what} is empty")
    return values


def cmd_eval(args) -> int:
    from .scaling.grid import Grid, run_grid
    from .scaling.stats import format_cells, matching_budget

    strategies = [get_strategy(s.strip()).name for s in args.strategies.split(",") if s.strip()]
    models = [m.strip() for m in (args.models or args.model).split(",") if m.strip()]
    scorers = [
        check_scorer_name(s.strip())
        for s in (args.scorers or args.scorer or default_scorer(models)).split(",")
        if s.strip()
    ]
    options = dict(_scorer(args, models).options)
    grid = Grid(
        strategies,
        _ints(args.budgets, "--budgets"),
        scorers,
        _config(args, "majority", 1),
        args.difficulty_samples,
        args.template,
        options,
        args.auto_table,
    )
    for strategy, n, _ in grid.cells():
        grid.config(strategy, n)  # every setting validated before anything is loaded
    _check_parallel(args.parallel)
    problems, skipped = [], []
    for data in (d.strip() for d in args.data.split(",") if d.strip()):
        found, bad = read_problems(data, args.limit)
        problems += found
        skipped += bad
    for message in skipped:
        print(f"skipped {message}", file=sys.stderr)
    if not problems:
        raise UserError(f"no usable rows in {args.data}")
    if len({p.id for p in problems}) < len(problems):
        raise UserError("problem ids repeat across the data files: give each file distinct ids")
    if args.difficulty_samples < 0:
        raise UserError("--difficulty-samples must be 0 or more")
    out = args.out or str(Path(tempfile_dir()) / "results.jsonl")
    ids = {p.id for p in problems}
    made = run_grid(models, problems, grid, out, load_policy, parallel=args.parallel)
    rows = [r for r in made if str(r["id"]) in ids]
    print(f"data: {args.data}  problems: {len(problems)}  scorers: {', '.join(scorers)}  results: {out}")
    print(format_cells(rows))
    names = list(dict.fromkeys(r["model"] for r in rows))
    sizes = {r["model"]: r.get("n_params", 0) for r in rows}
    for large in sorted(names, key=sizes.get)[1:]:
        small = min(names, key=sizes.get)
        for match in matching_budget(rows, small, large):
            ratio = "" if match["flops_ratio"] is None else f", {match['flops_ratio']:.2f}x its FLOPs"
            print(
                f"{small} matches {match['reference']} ({100 * match['accuracy']:.1f}%) with "
                f"{match['match'] or 'nothing in this grid'}{ratio} (FLOPs: 2 x parameters x tokens, policy and "
                "scorer both counted)"
            )
    return 0


def tempfile_dir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="tts-eval-")


def cmd_plot(args) -> int:
    from .scaling.grid import read_grid
    from .scaling.plot import write_html
    from .scaling.stats import compute_optimal, format_cells

    rows = read_grid(args.results)
    if not rows:
        raise UserError(f"no result rows in {', '.join(args.results)}")
    write_html(rows, args.out, title=args.title)
    print(format_cells(rows))
    print(f"figure written to {args.out}")
    if args.table:
        Path(args.table).write_text(json.dumps(compute_optimal(rows, args.table_model), indent=1) + "\n")
        print(f"compute-optimal table written to {args.table}")
    return 0


def cmd_prm_data(args) -> int:
    from .perturb import FAMILIES
    from .processbench import build_samples, gsm8k_items, write_samples

    if args.kinds not in FAMILIES:
        raise UserError(f"unknown --kinds {args.kinds!r}; valid: {', '.join(FAMILIES)}")
    if args.source == "synthetic":
        from .training.synth import generate

        items = [(p.question, list(p.steps), p.answer) for p in generate(args.offset + args.limit, args.seed)]
        items = items[args.offset :]
    else:
        from .data import read_rows

        try:
            items = gsm8k_items(read_rows(args.source, args.offset, args.offset + args.limit))
        except (KeyError, TypeError, AttributeError) as exc:
            raise UserError(f"cannot read GSM8K rows from {args.source!r}: {exc.__class__.__name__}") from None
    samples = build_samples(items, seed=args.seed, kinds=FAMILIES[args.kinds])
    write_samples(samples, args.out)
    kinds = {k: sum(s.kind == k for s in samples) for k in dict.fromkeys(s.kind for s in samples)}
    print(f"wrote {len(samples)} samples to {args.out}: " + ", ".join(f"{k} {v}" for k, v in kinds.items()))
    return 0


def cmd_prm_eval(args) -> int:
    from .processbench import THRESHOLDS, calibration, length_bias, metrics, read_samples, sweep

    choice = _scorer(args, [args.model])
    samples, skipped = read_samples(args.data, args.limit)
    tune = read_samples(args.tune_data, args.limit)[0] if args.tune_data else None
    for message in skipped:
        print(f"skipped {message}", file=sys.stderr)
    if not samples:
        raise UserError(f"no usable rows in {args.data}")
    if args.template is not None:
        load_template(args.template)
    scores = score_samples(samples, choice, args.model, args.template)
    table = sweep(samples, scores)
    if tune:
        best = max(sweep(tune, score_samples(tune, choice, args.model, args.template)), key=lambda m: m["f1"])[
            "threshold"
        ]
        how = f"threshold tuned on {args.tune_data}"
    else:
        best = max(table, key=lambda m: m["f1"])["threshold"]
        how = "threshold chosen on this data (in-sample)"
    chosen = metrics(samples, scores, args.threshold if args.threshold is not None else best)
    print(f"scorer {choice.name} on {args.data}: {chosen['erroneous']} erroneous, {chosen['correct']} correct samples")
    print(f"{'threshold':>9} {'error acc':>9} {'correct acc':>11} {'F1':>6}")
    for row in (r for r in table if r["threshold"] in THRESHOLDS):  # the fixed grid (the sweep also tries percentiles)
        print(
            f"{row['threshold']:>9.2f} {100 * row['error_acc']:>8.1f}% {100 * row['correct_acc']:>10.1f}% "
            f"{100 * row['f1']:>5.1f}%"
        )
    bias = length_bias(samples, scores)
    print(
        f"result at threshold {chosen['threshold']:.2f} ({how if args.threshold is None else 'given'}): "
        f"error acc {100 * chosen['error_acc']:.1f}%, correct acc {100 * chosen['correct_acc']:.1f}%, "
        f"F1 {100 * chosen['f1']:.1f}%"
    )
    print("length bias (Pearson r of step score with step length): " + ("n/a" if bias is None else f"{bias:+.3f}"))
    if args.calibrate > 0:
        policy = load_policy(args.model)
        cal = calibration(
            samples[: args.calibrate],
            scores[: args.calibrate],
            policy,
            lambda q: root_prompt(policy, q, args.template, args.model),
        )
        if cal["steps"]:
            r = "n/a" if cal["pearson"] is None else f"{cal['pearson']:+.3f}"
            print(
                f"calibration against 4-rollout Monte-Carlo values ({cal['steps']} steps of the first "
                f"{args.calibrate} samples): Pearson r {r}, mean |score - MC value| {cal['mean_abs_diff']:.3f}"
            )
        else:
            print("calibration: no sample carries a reference answer")
    return 0


def cmd_synth(args) -> int:
    from .training.synth import generate

    if args.count < 1 or args.count > 100_000:
        raise UserError("--count must be between 1 and 100000")
    seen = {p.question for p in generate(args.exclude_count, args.exclude_seed)} if args.exclude_count else set()
    problems = [p for p in generate(args.count + len(seen) // 10 + 20, args.seed) if p.question not in seen]
    with open(args.out, "w", encoding="utf-8") as out:
        for p in problems[: args.count]:
            out.write(
                json.dumps({"id": p.id, "question": p.question, "answer": p.answer, "steps": list(p.steps)}) + "\n"
            )
    print(
        f"wrote {min(args.count, len(problems))} problems to {args.out} (seed {args.seed}; questions of seed "
        f"{args.exclude_seed}'s first {args.exclude_count} left out)"
    )
    return 0


QUICK_TRAINING = dict(
    synthetic=24,
    gsm8k_rows=(1000, 1012),
    rollout_synthetic=4,
    rollout_gsm8k=2,
    n=4,
    m=2,
    max_steps=3,
    step_tokens=16,
    final_tokens=16,
    val_share=0.25,
    ensemble=2,
)
QUICK_EVALUATION = dict(
    synthetic=12,
    tune=12,
    gsm8k_rows=(6000, 6006),
    gsm8k_tune_rows=(6100, 6106),
    test_dev_rows=4,
    rollout_synthetic=2,
    rollout_test_dev=1,
    n=4,
    m=2,
    exclude_count=24,
)


def _compare(values: list[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for value in values:
        name, sep, folder = value.partition("=")
        if not sep or not name or not folder:
            raise UserError(f"--compare takes NAME=FOLDER, got {value!r}")
        pairs.append((name, folder))
    return tuple(pairs)


def cmd_train_prm(args) -> int:
    from .training.pipeline import TrainConfig, train

    _check_parallel(args.parallel)
    options = dict(
        model=args.model,
        out=args.out,
        work=args.work,
        seed=args.seed,
        parallel=args.parallel,
        layers=tuple(_ints(args.layers, "--layers")),
        hidden=args.hidden,
        ensemble=args.ensemble,
        labels=args.labels,
        rank_weight=args.rank_weight,
        last_separator=args.last_separator,
        template=args.template,
    )
    evaluation = {"compare": _compare(args.compare)}
    if args.quick:
        options.update(QUICK_TRAINING)
        evaluation.update(QUICK_EVALUATION)
    load_template(args.template)
    cfg = TrainConfig(**options, evaluation=evaluation)
    summary = train(cfg)
    own = summary["evaluation"]["own_steps"]["sets"]
    print(
        f"checkpoint: {cfg.out} ({summary['minutes']} min); validation AUC {summary['fit']['val_auc']}; held-out "
        "step AUC against gold-aligned labels: " + ", ".join(f"{k} {v['auc_gold']['probe']}" for k, v in own.items())
    )
    print(f"model card: {cfg.out}/README.md")
    return 0


def cmd_bench(args) -> int:
    from .benchmark import run_bench

    strategies = [get_strategy(s.strip()).name for s in args.strategies.split(",") if s.strip()]
    budgets = _ints(args.budgets, "--budgets")
    scorers = [check_scorer_name(s.strip()) for s in args.scorers.split(",") if s.strip()]
    problems, _ = read_problems(args.data, args.limit)
    if not problems:
        raise UserError(f"no usable rows in {args.data}")
    run_bench(
        args.model,
        args.data,
        problems,
        strategies,
        budgets,
        args.beam_width,
        args.max_steps,
        scorers,
        naive_max_n=args.naive_max_n,
        llama_max_n=args.llama_max_n,
        with_startup=not args.no_startup,
        render_sizes=() if args.no_render else (1000, 5000),
        print_fn=lambda line: print(line, flush=True),
        server=args.server,
    )
    return 0


def _train_defaults():
    from .training.pipeline import TrainConfig

    return TrainConfig()


def cmd_serve(args) -> int:
    from .serve import serve

    serve(args.host, args.port)
    return 0


def cmd_app(args) -> int:
    from .ui import launch

    launch(args.host, args.port)
    return 0


MAX_ERROR_CHARS = 300  # argparse quotes a bad value whole: an 8,000-digit --seed would fill the screen


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `error: ...` and exit code 2, as every bad input here."""

    def error(self, message: str):
        line = " ".join(message.split())
        if len(line) > MAX_ERROR_CHARS:
            line = line[: MAX_ERROR_CHARS - 1] + "…"
        self.exit(2, f"error: {line}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tts-explorer", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    app = commands.add_parser("app", help="serve the web page (operator settings from the environment: README)")
    app.add_argument("--host", default=None, help="address to listen on (default: $HOST, else 0.0.0.0)")
    app.add_argument("--port", type=int, default=None, help="port (default: $PORT, else 7860)")
    app.set_defaults(func=cmd_app)
    srv = commands.add_parser(
        "serve", help="an OpenAI-compatible /v1/chat/completions that answers by a search (operator settings: README)"
    )
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8000)
    srv.set_defaults(func=cmd_serve)
    solve = commands.add_parser("solve", help="search one problem and print the tree")
    solve.add_argument("problem")
    solve.add_argument(
        "--strategy", default=SearchConfig.strategy, help=", ".join(f"{s.name}: {s.label}" for s in STRATEGIES.values())
    )
    solve.add_argument("--n", type=int, default=SearchConfig.n, help="budget N (generations)")
    solve.add_argument("--answer", default=None, help="reference answer, to mark correctness")
    solve.add_argument("--out", default=None, help="write the tree as JSON here")
    _search_args(solve)
    solve.set_defaults(func=cmd_solve)
    ev = commands.add_parser("eval", help="accuracy of strategies and budgets on a JSONL data set")
    ev.add_argument("--data", required=True, help="JSONL problem files, comma-separated")
    ev.add_argument("--strategies", default="greedy,majority,best_of_n,beam,dvts")
    ev.add_argument("--budgets", default="1,4,16")
    ev.add_argument("--limit", type=int, default=None)
    ev.add_argument(
        "--out",
        default=None,
        help="one JSON line per (model, problem, strategy, budget, scorer); an "
        "existing file is resumed: its rows are not made again",
    )
    ev.add_argument("--scorers", default=None, help="comma-separated scorers (default: --scorer)")
    ev.add_argument(
        "--models", default=None, help="comma-separated policies, e.g. embedded,/models/SmolLM2-360M (default: --model)"
    )
    ev.add_argument(
        "--difficulty-samples",
        type=int,
        default=0,
        help="estimate each problem's difficulty as the policy's Pass@1 over K sampled chains",
    )
    ev.add_argument(
        "--parallel",
        type=int,
        default=1,
        help="problems searched at once: their searches share the local engine's decode loop or a "
        "server's slots (rows then carry each search's own wall time, longer than alone)",
    )
    _search_args(ev)
    ev.set_defaults(func=cmd_eval)
    pl = commands.add_parser("plot", help="scaling curves from eval results as one self-contained HTML file")
    pl.add_argument(
        "results",
        nargs="+",
        help="eval results files of one data set (a row without a difficulty takes the one any file estimated)",
    )
    pl.add_argument("--out", required=True)
    pl.add_argument("--title", default="TTS Explorer: test-time scaling")
    pl.add_argument("--table", default=None, help="also write the compute-optimal table (JSON) the auto strategy reads")
    pl.add_argument("--table-model", default=None, help="the model whose rows make the table (default: the first)")
    pl.set_defaults(func=cmd_plot)
    data = commands.add_parser("prm-data", help="build ProcessBench-style data from GSM8K gold solutions")
    data.add_argument(
        "--source",
        default=GSM8K_TRAIN,
        help="GSM8K-style JSONL (a path, or a shipped set: gsm8k-train, gsm8k-test-dev), or "
        "'synthetic' (the generator of training/synth.py, seeded by --seed)",
    )
    data.add_argument(
        "--kinds",
        default="stated",
        help="perturbations: stated (errors in a stated result), semantic (right arithmetic, wrong "
        "operation or number, carried on), all",
    )
    data.add_argument("--offset", type=int, default=0, help="first GSM8K row to use")
    data.add_argument("--limit", type=int, default=200)
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--out", required=True)
    data.set_defaults(func=cmd_prm_data)
    pe = commands.add_parser("prm-eval", help="ProcessBench metrics of a scorer on {problem, steps, label} data")
    pe.add_argument("--data", required=True)
    pe.add_argument("--tune-data", default=None, help="choose the threshold on this data instead")
    pe.add_argument("--threshold", type=float, default=None)
    pe.add_argument("--limit", type=int, default=None)
    pe.add_argument("--scorer", default=None)
    pe.add_argument("--scorer-model", default=None)
    pe.add_argument("--trust-remote-code", action="store_true")
    pe.add_argument("--model", default=EMBEDDED, help="policy, for scorers that need one")
    pe.add_argument(
        "--calibrate",
        type=int,
        default=0,
        help="compare step scores with Monte-Carlo rollout values on the first K samples",
    )
    pe.add_argument("--template", default=None, help="prompt template (default: the model's own)")
    pe.set_defaults(func=cmd_prm_eval)
    sy = commands.add_parser("synth", help="write problems from the synthetic generator as JSONL (eval's format)")
    sy.add_argument("--seed", type=int, required=True)
    sy.add_argument("--count", type=int, default=100)
    sy.add_argument("--exclude-seed", type=int, default=0, help="leave out questions of this seed's set (training)")
    sy.add_argument("--exclude-count", type=int, default=3000)
    sy.add_argument("--out", required=True)
    sy.set_defaults(func=cmd_synth)
    train_defaults = _train_defaults()
    from .scorers.probe_model import LAST_SEPARATORS  # loaded with the defaults' module

    tp = commands.add_parser(
        "train-prm",
        help="train the probe PRM on the policy's own steps and perturbed gold "
        "steps; evaluate it held out; write the checkpoint and its model card",
    )
    tp.add_argument("--model", default=EMBEDDED, help="the policy that samples steps, and the probe's backbone")
    tp.add_argument("--out", default=train_defaults.out)
    tp.add_argument("--work", default=train_defaults.work, help="where the slow stages keep what they made")
    tp.add_argument("--seed", type=int, default=0)
    tp.add_argument(
        "--parallel",
        type=int,
        default=train_defaults.parallel,
        help="rollout trees sampled at once (they share the engine's decode loop)",
    )
    tp.add_argument(
        "--layers",
        default=",".join(map(str, train_defaults.layers)),
        help="hidden-state indices the probe reads (0 = embeddings)",
    )
    tp.add_argument("--hidden", type=int, default=train_defaults.hidden, help="hidden units of the head (0: linear)")
    tp.add_argument(
        "--ensemble",
        type=int,
        default=train_defaults.ensemble,
        help="heads fitted with successive seeds and averaged into one (1: a single head)",
    )
    tp.add_argument(
        "--labels",
        default=train_defaults.labels,
        help="what the policy's steps are trained on: gold, "
        "mc-soft, mc-hard or gold+mc-soft (all are compared in the model card)",
    )
    tp.add_argument(
        "--rank-weight",
        type=float,
        default=train_defaults.rank_weight,
        help="weight of the pairwise term ranking a problem's right chains above its wrong ones (0: none)",
    )
    tp.add_argument(
        "--last-separator",
        choices=LAST_SEPARATORS,
        default=train_defaults.last_separator,
        help="tokenize a text's last separator as its end, or as when another step follows (so a step reads "
        "the same whether or not it is the last, as a search reads it)",
    )
    tp.add_argument("--template", default=DEFAULT_TEMPLATE, help="the prompt the policy's steps are sampled with")
    tp.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="NAME=FOLDER",
        help="another probe checkpoint measured beside the new one (repeatable)",
    )
    tp.add_argument("--quick", action="store_true", help="tiny data and evaluation: a smoke run (the tests use it)")
    tp.set_defaults(func=cmd_train_prm)
    bench = commands.add_parser("bench", help="the engine against the naive way and llama.cpp, side by side")
    bench.add_argument("--data", default="easy", help="a JSONL path or a shipped set's name")
    bench.add_argument("--limit", type=int, default=2, help="problems")
    bench.add_argument("--strategies", default="best_of_n,beam,dvts")
    bench.add_argument("--budgets", default="4,16,64")
    bench.add_argument("--beam-width", type=int, default=SearchConfig.beam_width)
    bench.add_argument("--max-steps", type=int, default=6)
    bench.add_argument("--scorers", default="arithmetic,confidence,judge,mc-rollout")
    bench.add_argument("--model", default=EMBEDDED)
    bench.add_argument("--naive-max-n", type=int, default=16, help="largest N the naive baseline runs (it is slow)")
    bench.add_argument("--llama-max-n", type=int, default=64, help="largest N llama.cpp runs")
    bench.add_argument("--no-startup", action="store_true", help="skip the app start timings")
    bench.add_argument("--no-render", action="store_true", help="skip the browser render timings")
    bench.add_argument(
        "--server",
        default=None,
        help="add rows for a policy server: its URL, or 'llama-server' to start llama.cpp's own on the same GGUF",
    )
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
