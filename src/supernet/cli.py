"""The `supernet` command: one subcommand per verb; each parses, builds objects and calls the library."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from supernet.core.errors import ConfigError, SupernetError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config file (see configs/)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override a config field, e.g. --set train.epochs=3 (repeatable)",
    )
    p.add_argument(
        "--device",
        help="auto (CUDA when available, else CPU; the default), cpu, cuda or cuda:N; overrides the config's device",
    )


def _space_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--space", required=required, help="search space name (see `supernet spaces`)")
    p.add_argument("--preset", help="space preset, e.g. imagenet or fashion-mnist")
    for name, kind in (
        ("width", float),
        ("resolution", int),
        ("input-channels", int),
        ("num-classes", int),
        ("stem-stride", int),
    ):
        p.add_argument(f"--{name}", type=kind, help=f"space option {name.replace('-', '_')}")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="any other space option")
    from supernet.space.opnames import IDENTITY_MODES

    p.add_argument("--identity", choices=IDENTITY_MODES, default="skip", help="identity handling (default skip)")


def _space_from_args(args: argparse.Namespace):
    from supernet.config.schema import parse_yaml
    from supernet.space import create_space

    options: dict[str, Any] = {
        k: getattr(args, k)
        for k in ("width", "resolution", "input_channels", "num_classes", "stem_stride")
        if getattr(args, k) is not None
    }
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option {item!r} must look like key=value")
        options[key] = parse_yaml(value, f"--option {key}")
    return create_space(args.space, preset=args.preset, **options)


def _benchmark_args(p: argparse.ArgumentParser, arch_lists: bool) -> None:
    p.add_argument("--benchmark", choices=("nas-bench-macro",), help="a published benchmark as the ground truth")
    p.add_argument("--benchmark-file", help="the benchmark's JSON file (with --benchmark)")
    if arch_lists:
        p.add_argument("--sample", type=int, metavar="K", help="with --benchmark: K archs stratified over its accuracy")
        p.add_argument("--seed", type=int, default=0, help="seed for --sample (default 0)")
        p.add_argument("--archs", help="with --benchmark: a file of archs to rank (one per line)")


def _benchmark_spec(args: argparse.Namespace):
    """The --benchmark options as a BenchmarkSpec, or None without --benchmark."""
    if not args.benchmark:
        if args.benchmark_file or getattr(args, "sample", None) is not None or getattr(args, "archs", None):
            raise ConfigError("--benchmark-file, --sample and --archs go with --benchmark NAME")
        return None
    from supernet.analysis.benchmark import BenchmarkSpec  # here: it imports scipy.stats (1-2 s)

    if not args.benchmark_file:
        raise ConfigError("--benchmark needs --benchmark-file PATH (the benchmark's JSON file)")
    return BenchmarkSpec(
        args.benchmark,
        args.benchmark_file,
        getattr(args, "sample", None),
        getattr(args, "seed", 0),
        getattr(args, "archs", None),
    )


def _yaml_scalar(value: object) -> str:
    """A command-line value as the YAML scalar of an override (a string stays a string: `1e3` or `on` too)."""
    import json

    return json.dumps(value) if isinstance(value, str) else str(value)


def _load_config(args: argparse.Namespace):
    """The user's config (its `imports:` run here, after the command line's --import) and overrides."""
    from supernet.config.schema import check_owned_options, load_config
    from supernet.core.plugins import import_all

    cfg = load_config(args.config, args.overrides)
    cfg.imports = import_all([*_cli_imports(args), *cfg.imports])
    check_owned_options(cfg, require_known=True)  # a strategy or sampler its imports registered, too
    return _with_device(cfg, args)


def _supernet_config(args: argparse.Namespace, supernet: str | Path) -> Any:
    """The config of every verb that reads a trained supernet (search, retrain, rank, similarity): the
    run's own config.yaml, or --config in its place, then --set on top; then --device. The run's own
    `imports:` are not run (it may come from someone else); those of --config are."""
    from supernet.runs.load import CHECKPOINTS, CONFIG, default_config, supernet_run_dir

    run = supernet_run_dir(supernet)
    own = run / CONFIG
    if args.config is None and (run / CHECKPOINTS).is_dir() and not own.is_file():  # a run without its config
        print(
            f"note: {own} is missing: the eval/search/standalone settings are the defaults (and --set); "
            f"give --config C to choose them",
            file=sys.stderr,
        )
    return _with_device(_own_config_imports(args, default_config(supernet, args.config, args.overrides)), args)


def _own_config_imports(args: argparse.Namespace, cfg: Any) -> Any:
    """Run the `imports:` of a config the user named with --config; a supernet run's own config.yaml (the
    default of rank/similarity) may come from someone else: its imports are not run."""
    from supernet.config.schema import check_owned_options
    from supernet.core.plugins import import_all

    cfg.imports = import_all([*_cli_imports(args), *(cfg.imports if args.config else [])])
    check_owned_options(cfg, require_known=True)
    return cfg


def _cli_imports(args: argparse.Namespace) -> list[str]:
    return [*(getattr(args, "imports_global", None) or []), *(getattr(args, "imports_verb", None) or [])]


def _add_import_option(p: argparse.ArgumentParser, dest: str) -> None:
    p.add_argument(
        "--import",
        dest=dest,
        action="append",
        metavar="MODULE_OR_FILE",
        help="import a module or run a .py file that registers spaces, ops, blocks or datasets "
        "before the command runs (repeatable; also `imports:` in the config)",
    )


def _add_verbosity_options(p: argparse.ArgumentParser, suffix: str) -> None:
    """-v/-q before the verb or after it (own dests: a subparser would reset the main parser's values)."""
    p.add_argument(
        "-v",
        "--verbose",
        dest=f"verbose_{suffix}",
        action="count",
        default=0,
        help="log more on stderr (debug lines)",
    )
    p.add_argument(
        "-q",
        "--quiet",
        dest=f"quiet_{suffix}",
        action="count",
        default=0,
        help="log less on stderr: warnings only (-qq: errors only); results on stdout are unchanged",
    )


def _log_level(args: argparse.Namespace) -> int:
    """The stderr log level of -v/-q (INFO without them; see supernet.core.logs)."""
    from supernet.core.logs import verbosity_level

    count = lambda name: sum(getattr(args, f"{name}_{s}", 0) or 0 for s in ("global", "verb"))  # noqa: E731
    return verbosity_level(count("verbose"), count("quiet"))


def _with_device(cfg: Any, args: argparse.Namespace) -> Any:
    """`--device` over the config's `device`, checked now so a bad value fails before any work."""
    from supernet.core.device import resolve_device

    if args.device is not None:
        cfg.device = args.device
    resolve_device(cfg.device)
    return cfg


@contextlib.contextmanager
def _lock(run_dir: str) -> Iterator[None]:
    """The run directory's lock; under torchrun only rank 0 takes it (all ranks share the run). A refusal
    (SupernetError) raised before anything was written leaves no empty folder behind: one this command made
    is removed again when empty (`rmdir` removes nothing else)."""
    from supernet.core.distributed_env import is_main_process
    from supernet.core.rundir import RunLock

    folder = Path(run_dir)
    made = not folder.exists()
    try:
        with RunLock(folder) if is_main_process() else contextlib.nullcontext():
            yield
    except SupernetError:
        if made:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def cmd_spaces(args: argparse.Namespace) -> int:
    from supernet.space import create_space, list_spaces

    rows = []
    for entry in list_spaces():
        space = create_space(entry.name)
        rows.append(
            {
                "name": entry.name,
                "layers": space.num_layers,
                "size": space.size,
                "presets": sorted(entry.presets),
                "named_archs": sorted(space.named_archs),
                "description": entry.description,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            print(
                f"{r['name']:<16} {r['layers']:>3} layers  size {r['size']:.3e}  presets: "
                f"{', '.join(r['presets']) or '-'}\n    {r['description']}"
            )
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    from supernet.cost import CostTable, format_quantity
    from supernet.runs.load import parse_arch

    space = _space_from_args(args)
    arch = parse_arch(space, args.arch)
    cost = CostTable.build(space, args.identity).query(arch)
    out = {"space": space.name, "arch": arch.to_string(), "indices": list(space.indices(arch)), **cost.to_dict()}
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"{arch}\n  MACs   {format_quantity(cost.macs)} ({cost.macs})\n  params {format_quantity(cost.params)} "
            f"({cost.params})"
        )
        for name, value in cost.extra.items():  # e.g. bitops of quantized spaces
            print(f"  {name} {format_quantity(value)} ({value})")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from supernet.jobs.train import train_supernet

    cfg = _load_config(args)
    with _lock(args.run_dir):  # under torchrun only rank 0 takes it
        result = train_supernet(cfg, Path(args.run_dir), resume=args.resume, fallback=args.fallback)
    last = result["epochs"][-1] if result["epochs"] else None
    print(
        f"trained {result['global_step']} steps into {args.run_dir}"
        + (f"; last epoch: loss {last['loss']:.3f}, sampled-path acc {last['acc_mean']:.3f}" if last else "")
    )
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from supernet.jobs.search import search_benchmark, search_supernet, search_table

    # the flags are overrides after --set's (they win), so the config is checked once with the chosen strategy
    flags = ("strategy", "max_macs", "min_macs", "max_params", "min_params", "max_bitops", "min_bitops", "min_acc")
    flags += ("seed", "latency_table", "max_latency", "min_latency")
    given = [(key, getattr(args, key)) for key in flags if getattr(args, key) is not None]
    args.overrides = [*(args.overrides or []), *(f"search.{key}={_yaml_scalar(value)}" for key, value in given)]
    cfg = _supernet_config(args, args.supernet) if args.supernet else _load_config(args)
    bench = _benchmark_spec(args)
    if bool(args.supernet) + bool(args.table) + bool(bench) != 1:
        raise ConfigError(
            "give exactly one of --supernet RUN (search a supernet), --table CSV (with --space) or "
            "--benchmark NAME --benchmark-file PATH"
        )
    if args.resume and not (Path(args.run_dir) / "journal.sqlite").is_file():
        raise ConfigError(
            f"--resume: {args.run_dir} holds no search journal to continue; drop --resume to start a search there"
        )
    with _lock(args.run_dir):
        if args.supernet:
            out = search_supernet(cfg, Path(args.supernet), Path(args.run_dir), resume=args.resume)
        else:
            if not args.space:
                raise ConfigError(
                    f"--{'table' if args.table else 'benchmark'} needs --space NAME (and the space "
                    f"options the table was made for)"
                )
            space = _space_from_args(args)
            if bench:
                out = search_benchmark(cfg, bench, space, Path(args.run_dir), args.identity, resume=args.resume)
            else:
                out = search_table(cfg, Path(args.table), space, Path(args.run_dir), args.identity, resume=args.resume)
    print(f"best {out['best']}  " + "  ".join(f"{k}={v:.4g}" for k, v in out["best_metrics"].items()))
    print(f"{out['evaluations']} archs evaluated in {out['seconds']:.1f}s; results in {args.run_dir}/result.json")
    return 0


def _timed_space(args: argparse.Namespace) -> tuple[Any, str]:
    """(space, identity) of `latency-table`: from exactly one of --space (and its options), --supernet RUN (the
    space the run was trained on) or --config C (the space C trains, its input fixed by C's data)."""
    given = [
        flag
        for flag, value in (("--space", args.space), ("--supernet", args.supernet), ("--config", args.config))
        if value
    ]
    if len(given) != 1:
        raise ConfigError(
            f"give exactly one of --space NAME, --supernet RUN or --config C (got {', '.join(given) or 'none'})"
        )
    if args.space:
        return _space_from_args(args), args.identity or "skip"
    options = [
        f"--{k.replace('_', '-')}"
        for k in ("preset", "width", "resolution", "input_channels", "num_classes", "stem_stride")
        if getattr(args, k) is not None
    ]
    if options or args.option:
        raise ConfigError(f"{given[0]} fixes the space; drop {', '.join(options + ['--option'] * bool(args.option))}")
    if args.supernet:
        from supernet.runs.load import trained_space

        space, identity = trained_space(args.supernet)
    else:
        from supernet.config.schema import load_config
        from supernet.runs.build import build_space, load_data

        cfg = _own_config_imports(args, load_config(args.config))  # its imports: (a space it registers)
        space, identity = build_space(cfg, load_data(cfg)), cfg.supernet.identity
    if args.identity is not None and args.identity != identity:
        raise ConfigError(f"--identity {args.identity}: {given[0]} uses identity {identity!r}; drop --identity")
    return space, identity


def cmd_latency_table(args: argparse.Namespace) -> int:
    from supernet.cost.latency import write_latency_table
    from supernet.cost.timing import TimingSettings

    settings = TimingSettings(
        device=args.device,
        backend=args.backend,
        batch_size=args.batch_size,
        threads=args.threads,
        min_run_time=args.min_run_time,
        clock=args.clock,
    )
    space, identity = _timed_space(args)
    table = write_latency_table(
        space,
        identity,
        settings,
        Path(args.out),
        validate=args.validate,
        seed=args.seed,
        calibrate=args.calibrate,
    )
    print(f"latency table of {len(table.layers)} layers written to {args.out} (fixed part {table.fixed_ms:.3f} ms)")
    fit = table.meta.get("calibration")
    if fit:
        line = f"measured = {fit['scale']:.3f} x table + {fit['offset_ms']:.4f} ms"
        print(
            f"calibration on {fit['archs']} whole models: {line}, MAPE on them "
            f"{fit['mape_before']:.1%} -> {fit['mape_after']:.1%}"
            if fit["applied"]
            else f"calibration NOT applied: the fit {line} has no positive scale (timings too noisy?)"
        )
    check = table.meta.get("validation")
    if check:
        before = f" (uncalibrated {check['mape_uncalibrated']:.1%})" if "mape_uncalibrated" in check else ""
        print(
            f"validation on {check['archs']} other whole models: MAPE {check['mape']:.1%}{before}, "
            f"Kendall tau {check['kendall_tau']:.3f}"
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from supernet.jobs.export import check_onnx_extra, export_arch

    if args.onnx:
        check_onnx_extra()  # before the output folder is made
    if (Path(args.out) / "model.json").exists() and not args.force:
        raise ConfigError(
            f"{args.out} already holds an exported model.json; pass --force to replace it (nothing was written)"
        )
    with _lock(args.out):
        out = export_arch(Path(args.supernet), args.arch, Path(args.out), drop_els=args.drop_els, onnx=args.onnx)
    print(f"exported {out['arch']} to {out['dir']}")
    if out["els_folded"] or out["els_kept"]:
        print(
            f"  trained ELS: {out['els_folded']} folded into the next conv (exact), {out['els_kept']} kept as 1x1 convs"
        )
    if out["els_dropped"]:
        print(
            f"  --drop-els: {out['els_dropped']} trained ELS layers dropped; the exported model DIFFERS from the "
            f"supernet path (SCARLET's rule: retrain it)"
        )
    if "onnx" in out:
        print(
            f"model.onnx (opset {out['onnx']['opset']}) matches PyTorch on random inputs to "
            f"{out['onnx']['max_difference']:.2g}; inputs are normalised images (mean/std in its metadata)"
        )
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    from supernet.jobs.retrain import train_standalone
    from supernet.runs.load import load_supernet, parse_arch, trained_config

    cfg = _supernet_config(args, args.supernet) if args.supernet else _load_config(args)
    if args.supernet:
        net, meta = load_supernet(Path(args.supernet))
        space, identity = net.space, net.options.identity
        cfg = trained_config(cfg, meta)
    else:
        space, identity = _space_from_args(args), args.identity
    arch = parse_arch(space, args.arch)
    with _lock(args.run_dir):
        let = False if args.strided_els else None
        out = train_standalone(cfg, Path(args.run_dir), space, arch, identity, resume=args.resume, let=let)
    print(f"{out['arch']}: val acc {out['val_acc']:.4f}, test acc {out['test_acc']:.4f}")
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    from supernet.jobs.pipeline import run_pipeline

    cfg = _load_config(args)
    with _lock(args.run_dir):
        summary = run_pipeline(cfg, Path(args.run_dir), resume=args.resume)
    print(summary["report"])
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from supernet.jobs.prune import run_prune

    cfg = _load_config(args)
    with _lock(args.run_dir):
        out = run_prune(cfg, Path(args.run_dir), resume=args.resume)
    sizes = " -> ".join(f"{row['size']:.3g}" for row in out["stages"])
    print(
        f"space size per stage: {sizes}; best {out['final']['best']}  "
        + "  ".join(f"{k}={v:.4g}" for k, v in out["final"]["best_metrics"].items())
    )
    print(f"results in {args.run_dir}/prune.json")
    return 0


def cmd_groundtruth(args: argparse.Namespace) -> int:
    from supernet.analysis.groundtruth import parse_shard, read_arch_file, sample_archs, sample_archs_by_identities
    from supernet.jobs.groundtruth import run_groundtruth
    from supernet.runs.build import build_space, load_data

    if args.by_identities and not args.sample:
        raise ConfigError("--by-identities spreads a sample: give --sample K with it")
    cfg = _load_config(args)
    shard = parse_shard(args.shard)
    archs = None
    if args.archs or args.sample:
        space = build_space(cfg, load_data(cfg))
        if args.archs:
            archs = read_arch_file(space, args.archs)
        elif args.by_identities:
            archs = sample_archs_by_identities(space, args.sample, args.seed)
        else:
            archs = sample_archs(space, args.sample, args.seed)
    out = run_groundtruth(cfg, Path(args.run_dir), archs, shard)
    busy = f", {len(out['busy'])} busy in another process" if out["busy"] else ""
    print(
        f"shard {shard[0]}/{shard[1]}: trained {len(out['trained'])}, skipped {len(out['skipped'])} finished{busy}; "
        f"{out['rows']}/{out['total']} archs in {out['csv']}"
    )
    return 0


def cmd_rank(args: argparse.Namespace) -> int:
    from supernet.analysis.ranking import format_rank
    from supernet.jobs.rank import rank_supernets

    bench = _benchmark_spec(args)
    if bool(bench) == bool(args.groundtruth):
        raise ConfigError("give exactly one of --groundtruth CSV or --benchmark NAME --benchmark-file PATH")
    cfg = _supernet_config(args, args.supernet[0])
    with _lock(args.run_dir):
        out = rank_supernets(
            cfg,
            args.supernet,
            bench or args.groundtruth,
            Path(args.run_dir),
            k=args.topk,
            improvement_at=args.improvement_at,
        )
    print(format_rank(out))
    print(f"results in {args.run_dir}/rank.json, predictions.csv, " + ", ".join(out["figures"]))
    return 0


def cmd_similarity(args: argparse.Namespace) -> int:
    from supernet.analysis.similarity import format_matrix
    from supernet.jobs.similarity import run_similarity

    cfg = _supernet_config(args, args.supernet)
    with _lock(args.run_dir):
        out = run_similarity(
            cfg,
            args.supernet,
            args.layer,
            Path(args.run_dir),
            arch=args.arch,
            seed=args.seed,
            batch_size=args.batch_size,
        )
    print(format_matrix(out))
    print(f"saved {args.run_dir}/similarity.json and similarity.png")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from supernet.analysis.report import build_report

    path = build_report(Path(args.run_dir), args.out)
    print(f"report written to {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="supernet",
        description="One-shot weight-sharing NAS: train a supernet once, search it under budgets, export the winner.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _add_import_option(parser, "imports_global")
    _add_verbosity_options(parser, "global")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("spaces", help="list the registered search spaces")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_spaces)

    p = sub.add_parser("cost", help="MACs and parameters of an arch's stand-alone model")
    _space_args(p)
    p.add_argument("--arch", required=True, help="op names, indices (0,5,0,6,...) or a named arch")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_cost)

    p = sub.add_parser("train", help="train a supernet")
    _config_args(p)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    p.add_argument("--fallback", action="store_true", help="with --resume: use the previous checkpoint")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("search", help="search a trained supernet (or a table of accuracies) under hard constraints")
    _config_args(p)
    p.add_argument("--supernet", help="supernet run directory or checkpoint file")
    p.add_argument("--table", help="CSV of arch,accuracy[,macs,params,...] to search instead of a supernet")
    _benchmark_args(p, arch_lists=False)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--resume", action="store_true", help="continue a killed search from its journal")
    p.add_argument(
        "--strategy",
        metavar="NAME",
        help="evolution (SPOS), random, nsga2 (SCARLET), ces (PAD-NAS), or any registered strategy (also one "
        "from --import FILE); its own options: --set search.options.NAME=VALUE",
    )
    p.add_argument("--max-macs", help="e.g. 330M")
    p.add_argument("--min-macs")
    p.add_argument("--max-params", help="e.g. 4.5M")
    p.add_argument("--min-params")
    p.add_argument("--max-bitops", help="e.g. 6.3G (quantized spaces: MACs x weight bits x activation bits)")
    p.add_argument("--min-bitops")
    p.add_argument("--min-acc", type=float)
    p.add_argument("--latency-table", help="JSON from `supernet latency-table`: adds the latency_ms metric")
    p.add_argument("--max-latency", help="e.g. 12ms (needs --latency-table)")
    p.add_argument("--min-latency", help="e.g. 10ms; with --max-latency PAD-NAS's latency window")
    p.add_argument("--seed", type=int)
    _space_args(p, required=False)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("latency-table", help="time every layer x candidate (plus stem and head) on this device")
    _space_args(p, required=False)
    p.set_defaults(identity=None)  # with --supernet/--config: theirs
    p.add_argument("--supernet", help="time the exact space (and identity) this supernet run was trained on")
    p.add_argument("--config", help="time the space (and identity) this config trains (its data fixes the input)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--backend", default="torch", help="torch (default) or onnxruntime")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    p.add_argument("--clock", default="auto", help="auto (default: cpu for one CPU thread, else wall), wall or cpu")
    p.add_argument("--min-run-time", type=float, default=0.2, help="seconds of timing per entry (default 0.2)")
    p.add_argument(
        "--validate",
        type=int,
        default=0,
        metavar="N",
        help="also time N sampled whole models; MAPE and Kendall tau go into the table",
    )
    p.add_argument(
        "--calibrate",
        type=int,
        default=10,
        metavar="K",
        help="time K whole models and fold a robust line (scale, offset) into the table (default 10; 0: off)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the --validate and --calibrate samples")
    p.add_argument("--out", required=True, help="output JSON (an existing file is never overwritten)")
    p.set_defaults(func=cmd_latency_table)

    p = sub.add_parser("export", help="export an arch as a stand-alone model with inherited weights")
    p.add_argument("--supernet", required=True, help="supernet run directory or checkpoint file")
    p.add_argument("--arch", required=True, help="arch string, named arch or a search result.json")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument(
        "--drop-els",
        action="store_true",
        help="drop shape-keeping ELS layers (SCARLET's rule; a different function, meant for retraining)",
    )
    p.add_argument("--onnx", action="store_true", help="also write model.onnx (opset 17), checked with onnxruntime")
    p.add_argument("--force", action="store_true", help="replace a model already exported into --out")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("retrain", help="train an arch's stand-alone model from scratch and report test accuracy")
    _config_args(p)
    p.add_argument("--arch", required=True, help="arch string, named arch or a search result.json")
    p.add_argument("--supernet", help="take space and data from this supernet run")
    _space_args(p, required=False)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--resume", action="store_true")
    p.add_argument(
        "--strided-els",
        action="store_true",
        help="ELS spaces: keep shape-changing identities as strided 1x1 ELS convs (default: the LET paper's model)",
    )
    p.set_defaults(func=cmd_retrain)

    p = sub.add_parser("pipeline", help="the main job: train supernet, search, export, retrain, report")
    _config_args(p)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--resume", action="store_true")
    p.set_defaults(func=cmd_pipeline)

    p = sub.add_parser(
        "prune",
        help="PAD-NAS progressive space pruning: train, then M-2 x (CES, prune, fine-tune), then a final CES search",
    )
    _config_args(p)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--resume", action="store_true", help="continue a killed run in the stage it was in")
    p.set_defaults(func=cmd_prune)

    p = sub.add_parser("groundtruth", help="train archs stand-alone from scratch: a ground-truth accuracy table")
    _config_args(p)
    p.add_argument("--run-dir", required=True)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--archs", help="file with one arch per line (or a CSV with an 'arch' column)")
    group.add_argument("--sample", type=int, metavar="K", help="sample K distinct random archs")
    p.add_argument("--seed", type=int, default=0, help="seed for --sample (default 0)")
    p.add_argument(
        "--by-identities",
        action="store_true",
        help="with --sample: spread the K archs evenly over the number of `id` layers",
    )
    p.add_argument("--shard", metavar="i/n", help="train only archs with index %% n == i (0-based)")
    p.set_defaults(func=cmd_groundtruth)

    p = sub.add_parser("rank", help="rank ground-truth archs with supernets: Kendall tau, improvement, ...")
    _config_args(p)
    p.add_argument(
        "--supernet",
        action="append",
        required=True,
        help="supernet run directory or checkpoint (repeat for self-consistency)",
    )
    p.add_argument("--groundtruth", help="CSV arch,accuracy[,...] (e.g. from `supernet groundtruth`)")
    _benchmark_args(p, arch_lists=True)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--topk", type=int, help="k for the top-k overlap (default 10%% of the archs)")
    p.add_argument("--improvement-at", type=int, default=10, help="n for the improvement summary (default 10)")
    p.set_defaults(func=cmd_rank)

    p = sub.add_parser("similarity", help="cosine similarity between the outputs of one layer's candidates")
    _config_args(p)
    p.add_argument("--supernet", required=True, help="supernet run directory or checkpoint file")
    p.add_argument("--layer", type=int, required=True, help="searchable layer index (0-based)")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--arch", help="path for the layers before --layer (default: a seeded random arch)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)
    p.set_defaults(func=cmd_similarity)

    p = sub.add_parser("report", help="a self-contained HTML report of a run directory")
    p.add_argument("run_dir", help="pipeline run or any single-command run directory")
    p.add_argument("--out", help="output file (default RUN_DIR/report.html)")
    p.set_defaults(func=cmd_report)
    for verb in sub.choices.values():  # --import also after the verb (its own dest: argparse would reset ours)
        _add_import_option(verb, "imports_verb")
        _add_verbosity_options(verb, "verb")
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("supernet")
    except PackageNotFoundError:  # run from a source checkout that was never installed
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    from supernet.core.logs import stderr_logging

    args = build_parser().parse_args(argv)
    if getattr(args, "command", None) == "retrain" and not args.supernet and not args.space:
        print("supernet retrain: error: give --supernet RUN or --space NAME", file=sys.stderr)
        return 2
    with stderr_logging(_log_level(args)):  # the library's log records, as bare lines on stderr
        return _run(args.func, args)


def _check_output(args: argparse.Namespace) -> None:
    """The command's output directory must be a directory that is not another command's run."""
    from supernet.core.rundir import check_output_dir

    if args.command == "export":
        check_output_dir(Path(args.out), "export", "--out")
    elif args.command != "report" and getattr(args, "run_dir", None):
        check_output_dir(Path(args.run_dir), args.command)


# Verbs that draw figures (into files): they run on matplotlib's non-interactive Agg backend.
_PLOTTING_VERBS = {"search", "rank", "similarity", "report", "prune", "pipeline"}


def _figures_to_files(command: str) -> None:
    """Agg for a verb that draws (no display needed, no window opens); the only `matplotlib.use` in the
    package, since a library must leave the backend to its application. Without matplotlib: nothing to do
    (the figures' own code names the missing extra)."""
    import importlib.util

    if command in _PLOTTING_VERBS and importlib.util.find_spec("matplotlib") is not None:
        import matplotlib

        matplotlib.use("Agg")


def _run(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    from supernet.core.distributed_env import leave_process_group

    try:
        return _run_command(func, args)
    finally:
        leave_process_group()  # under torchrun: every rank, whatever its outcome (see its docstring)


def _run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    from supernet.core.plugins import import_all

    try:
        import_all(_cli_imports(args))
        _figures_to_files(args.command)
        _check_output(args)
        code = func(args)
        sys.stdout.flush()  # inside the try: a reader that has gone shows up here, not at exit
        return code
    except SupernetError as e:
        print(f"supernet {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"supernet {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `supernet spaces --json | head`: the reader has gone, stop quietly
        _silence_stdout()
        return 141
    except OSError as e:
        if e.errno not in _USER_ERRNOS:
            raise
        where = f" ({e.filename})" if e.filename else ""
        intact = "; files already written are intact" if e.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        print(f"supernet {args.command}: error: {e.strerror or e}{where}{intact}", file=sys.stderr)
        return 2


# OS errors caused by the user's disk or paths (full, read-only, permissions, wrong kind of path).
_USER_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EEXIST,
    errno.ENAMETOOLONG,
    errno.ELOOP,
}


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
