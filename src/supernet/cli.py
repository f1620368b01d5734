"""The `supernet` command: one subcommand per verb; each parses, builds objects and calls the library."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from supernet.errors import ConfigError, SupernetError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config file (see configs/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override a config field, e.g. --set train.epochs=3 (repeatable)")


def _space_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--space", required=True, help="search space name (see `supernet spaces`)")
    p.add_argument("--preset", help="space preset, e.g. imagenet or fashion-mnist")
    for name, kind in (("width", float), ("resolution", int), ("input-channels", int), ("num-classes", int),
                       ("stem-stride", int)):
        p.add_argument(f"--{name}", type=kind, help=f"space option {name.replace('-', '_')}")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="any other space option")
    p.add_argument("--identity", choices=("skip", "els"), default="skip", help="identity handling (default skip)")


def _space_from_args(args: argparse.Namespace):
    from supernet.space import create_space

    options: dict[str, Any] = {k: getattr(args, k) for k in ("width", "resolution", "input_channels", "num_classes",
                                                             "stem_stride") if getattr(args, k) is not None}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option {item!r} must look like key=value")
        options[key] = yaml.safe_load(value)
    return create_space(args.space, preset=args.preset, **options)


def _load_config(args: argparse.Namespace):
    from supernet.config import load_config

    return load_config(args.config, args.overrides)


def _lock(run_dir: str):
    from supernet.rundir import RunLock

    return RunLock(Path(run_dir))


def cmd_spaces(args: argparse.Namespace) -> int:
    from supernet.space import create_space, list_spaces

    rows = []
    for entry in list_spaces():
        space = create_space(entry.name)
        rows.append({"name": entry.name, "layers": space.num_layers, "size": space.size,
                     "presets": sorted(entry.presets), "named_archs": sorted(space.named_archs),
                     "description": entry.description})
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            print(f"{r['name']:<16} {r['layers']:>3} layers  size {r['size']:.3e}  presets: "
                  f"{', '.join(r['presets']) or '-'}\n    {r['description']}")
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    from supernet.cost import CostTable, format_quantity

    space = _space_from_args(args)
    arch = space.parse_arch(args.arch)
    cost = CostTable.build(space, args.identity).query(arch)
    out = {"space": space.name, "arch": arch.to_string(), "indices": list(space.indices(arch)), **cost.to_dict()}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{arch}\n  MACs   {format_quantity(cost.macs)} ({cost.macs})\n  params {format_quantity(cost.params)} "
              f"({cost.params})")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from supernet.workflow import train_supernet

    cfg = _load_config(args)
    with _lock(args.run_dir):
        result = train_supernet(cfg, Path(args.run_dir), resume=args.resume, fallback=args.fallback)
    last = result["epochs"][-1] if result["epochs"] else None
    print(f"trained {result['global_step']} steps into {args.run_dir}"
          + (f"; last epoch: loss {last['loss']:.3f}, sampled-path acc {last['acc_mean']:.3f}" if last else ""))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from supernet.workflow import search_supernet

    cfg = _load_config(args)
    for key in ("strategy", "max_macs", "min_macs", "max_params", "min_params", "min_acc", "seed"):
        value = getattr(args, key)
        if value is not None:
            setattr(cfg.search, key, value)
    with _lock(args.run_dir):
        out = search_supernet(cfg, Path(args.supernet), Path(args.run_dir))
    print(f"best {out['best']}  " + "  ".join(f"{k}={v:.4g}" for k, v in out["best_metrics"].items()))
    print(f"{out['evaluations']} archs evaluated in {out['seconds']:.1f}s; results in {args.run_dir}/result.json")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from supernet.workflow import export_arch

    with _lock(args.out):
        out = export_arch(Path(args.supernet), args.arch, Path(args.out))
    print(f"exported {out['arch']} to {out['dir']}")
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    from supernet.workflow import load_supernet, parse_arch, train_standalone

    cfg = _load_config(args)
    if args.supernet:
        net, meta = load_supernet(Path(args.supernet))
        space, identity = net.space, net.options.identity
        cfg.data = type(cfg.data)(**meta["data"])
    else:
        space, identity = _space_from_args(args), args.identity
    arch = parse_arch(space, args.arch)
    with _lock(args.run_dir):
        out = train_standalone(cfg, Path(args.run_dir), space, arch, identity, resume=args.resume)
    print(f"{out['arch']}: val acc {out['val_acc']:.4f}, test acc {out['test_acc']:.4f}")
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    from supernet.pipeline import run_pipeline

    cfg = _load_config(args)
    with _lock(args.run_dir):
        summary = run_pipeline(cfg, Path(args.run_dir), resume=args.resume)
    print(summary["report"])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="supernet", description="One-shot weight-sharing NAS: train a supernet once, "
                                                  "search it under budgets, export the winner.")
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

    p = sub.add_parser("search", help="search a trained supernet under hard constraints")
    _config_args(p)
    p.add_argument("--supernet", required=True, help="supernet run directory or checkpoint file")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--strategy", help="evolution (SPOS) or random")
    p.add_argument("--max-macs", help="e.g. 330M")
    p.add_argument("--min-macs")
    p.add_argument("--max-params", help="e.g. 4.5M")
    p.add_argument("--min-params")
    p.add_argument("--min-acc", type=float)
    p.add_argument("--seed", type=int)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("export", help="export an arch as a stand-alone model with inherited weights")
    p.add_argument("--supernet", required=True, help="supernet run directory or checkpoint file")
    p.add_argument("--arch", required=True, help="arch string, named arch or a search result.json")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("retrain", help="train an arch's stand-alone model from scratch and report test accuracy")
    _config_args(p)
    p.add_argument("--arch", required=True, help="arch string, named arch or a search result.json")
    p.add_argument("--supernet", help="take space and data from this supernet run")
    p.add_argument("--space", help="or name the space (with --preset/--width/...)")
    p.add_argument("--preset")
    for name, kind in (("width", float), ("resolution", int), ("input-channels", int), ("num-classes", int),
                       ("stem-stride", int)):
        p.add_argument(f"--{name}", type=kind)
    p.add_argument("--option", action="append", default=[])
    p.add_argument("--identity", choices=("skip", "els"), default="skip")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--resume", action="store_true")
    p.set_defaults(func=cmd_retrain)

    p = sub.add_parser("pipeline", help="the main job: train supernet, search, export, retrain, report")
    _config_args(p)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--resume", action="store_true")
    p.set_defaults(func=cmd_pipeline)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "command", None) == "retrain" and not args.supernet and not args.space:
        print("supernet retrain: error: give --supernet RUN or --space NAME", file=sys.stderr)
        return 2
    return _run(args.func, args)


def _run(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return func(args)
    except SupernetError as e:
        print(f"supernet {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"supernet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
