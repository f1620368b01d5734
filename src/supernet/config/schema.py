"""Run configuration: typed dataclass sections, loaded from YAML with `section.field=value` overrides."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from supernet.config.rules import validate
from supernet.core.errors import ConfigError
from supernet.model.supernet import SupernetOptions
from supernet.search.predictor import DEFAULT_PAIR_RIDGE, DEFAULT_RIDGE
from supernet.train.loop import OptimConfig


@dataclass
class DataConfig:
    name: str = "fashion-mnist"
    root: str | None = None
    val_size: float = 10000
    split_seed: int = 0
    train_limit: int | None = None
    resolution: int | None = None
    channels: int = 3
    max_per_class: int | None = None
    stream: str = "auto"  # auto | memory | disk: disk decodes per batch in DataLoader workers
    memory_limit_mb: int = 2048  # auto: stream when the decoded training set would exceed this
    workers: int | None = None  # streaming decode processes; None: min(8, CPU cores)
    crop_scale_min: float = 0.08  # streaming training: random-resized crop area fraction in [min, 1]
    eval_crop: float = 0.875  # streaming evaluation: centre crop of this fraction of the shorter side
    options: dict[str, Any] = field(default_factory=dict)  # passed to a registered dataset's loader
    val_per_class: int | None = None  # class-balanced validation split (SPOS: 50 per class), in place of val_size


@dataclass
class SpaceConfig:
    name: str = "scarlet-s1"
    preset: str | None = "fashion-mnist"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig(OptimConfig):
    sampler: str = "uniform"  # uniform | fair | uniform-constrained | path-dropout | depth-balanced | sandwich |
    #                           deep-first
    few_shot_layers: list[int] = field(default_factory=list)  # few-shot NAS: split on these layers' choices
    # fine-tuning epochs of each sub-supernet after the one-shot training (None: half of train.epochs, as the
    # few-shot NAS code trains each NAS-Bench-201 sub-supernet 300 epochs after a 600-epoch one-shot supernet)
    few_shot_epochs: int | None = None
    few_shot_lr: float | None = None  # their lr (None: train.lr, a warm restart of the schedule, no warm-up)
    few_shot_max_parts: int = 64  # refuse a split into more parts than this (a guard; raise it to force)
    distill: bool = False  # in-place distillation: the step's first path (sandwich: the largest) teaches the rest
    # pairwise ranking loss with a cost prior (PGONAS, PicoNAS): peak weight of relu(L_costlier - L_cheaper)
    # over the step's paths, ramped as w * sin(0.8 pi t / T); 0: off. Needs two or more paths per step.
    pairwise_rank_weight: float = 0.0
    # the sampler's own options, checked by its options dataclass: uniform `identity_prob` (None) and `paths` (1),
    # uniform-constrained `bins` (5), path-dropout `drop_rate` (0.5), sandwich `random_paths` (BigNAS: 2),
    # deep-first `fraction` (0.25)
    sampler_options: dict[str, Any] = field(default_factory=dict)
    health_models: int = 0  # per epoch: val accuracies of this many sampled one-shot models
    allreduce_bucket_mb: float = 25.0  # torchrun: gradients are averaged in flattened buckets of this size


@dataclass
class EvalConfig:
    recal_batches: int = 20
    recal_batch_size: int = 128
    recal_reset: bool | None = None  # None: by method, true unless supernet.interchoice is bias/split
    val_batch_size: int = 500
    val_limit: int | None = None
    seed: int = 0
    twins: str = "spelling"  # spelling | canonical | mean: how a network with several spellings is scored
    bn: str = "recalibrate"  # recalibrate | batch: running statistics re-estimated, or each batch's own
    metric: str = "accuracy"  # accuracy | loss (exp(-mean cross-entropy))


@dataclass
class SearchConfig:
    strategy: str = "evolution"
    max_macs: str | None = None
    min_macs: str | None = None
    max_params: str | None = None
    min_params: str | None = None
    max_bitops: str | None = None  # quantized spaces (SPOS Table 6), e.g. 6.3G
    min_bitops: str | None = None
    cost_metric: str = "macs"  # the cost objective of nsga2 and ces: macs, params or bitops
    min_acc: float | None = None
    latency_table: str | None = None  # a `supernet latency-table` JSON: adds the latency_ms metric
    max_latency: str | None = None  # e.g. 12ms (needs latency_table); with min_latency PAD-NAS's window
    min_latency: str | None = None
    seed: int = 0
    # the strategy's own options, checked by its options dataclass (`search.options.population=20`); unset
    # ones keep the paper defaults (population: SPOS 50, SCARLET 70, CES 64; iterations: SPOS 20, CES 40,
    # SCARLET `generations` 120; random `num_samples` 1000)
    options: dict[str, Any] = field(default_factory=dict)
    progress: bool = True  # a tqdm bar on stderr; off: a plain line every 10 evaluations
    # racing (issue 30.2; off until measured): a candidate that cannot reach the current top-k even with every
    # remaining validation image right stops early (checked after each validation batch); the top-k is unchanged
    racing: bool = False
    # search a predictor fitted to the supernet's scores of `predictor_samples` archs of the whole space, drawn
    # `predictor_design` (once-for-all's accuracy predictor; `additive`: one weight per layer and choice, ridge
    # `predictor_ridge`; `pairs`: additive plus one weight per adjacent layer pair and pair of choices, ridge
    # `predictor_pair_ridge` on those), not the supernet's scores themselves: none | additive | pairs
    # (docs/analysis.md, rounds 6, 7, 10)
    predictor: str = "none"
    predictor_samples: int = 150
    predictor_design: str = "depth-balanced"  # how its archs are drawn: depth-balanced | uniform
    predictor_ridge: float = DEFAULT_RIDGE  # supernet.search.predictor says why 20
    predictor_pair_ridge: float = DEFAULT_PAIR_RIDGE  # `pairs` only; supernet.search.predictor says why 100


FREQUENCY_SOURCES = ("population", "archive")


@dataclass
class PruneConfig:
    """PAD-NAS progressive space pruning (`supernet prune`); defaults from PAD-NAS section 4."""

    stages: int = 4  # M: stage 1 trains, stages 2..M-1 prune and fine-tune, stage M searches
    threshold: float = 0.01  # P_th: ops chosen at or below this frequency are dropped
    max_rank: int = 10  # frequencies over archs with non-domination rank < max_rank
    epochs: list[int] = field(default_factory=lambda: [120, 80, 40])  # per training stage
    lrs: list[float] = field(default_factory=lambda: [0.5, 0.1, 0.1])  # per training stage
    epoch_scale: float = 1.0  # scales `epochs` (rounded, at least 1) for small runs
    # which archs the frequencies count: CES's final population (PAD-NAS 3.2) or every arch it evaluated
    frequency_from: str = "population"  # population | archive

    def __post_init__(self) -> None:
        if self.frequency_from not in FREQUENCY_SOURCES:
            raise ConfigError(
                f"prune.frequency_from must be one of {', '.join(FREQUENCY_SOURCES)}, got {self.frequency_from!r}"
            )


@dataclass
class LogConfig:
    """What a run logs beside metrics.jsonl and result.json (stderr verbosity is the command's -v/-q)."""

    # RUN/tensorboard/: per step loss, path accuracy, lr, images/s; epoch summaries and evaluation results;
    # a search's best-so-far per generation (needs the `[tensorboard]` extra)
    tensorboard: bool = False


@dataclass
class StandaloneConfig(OptimConfig):
    lr: float = 0.05


@dataclass
class Config:
    device: str = "auto"  # auto (CUDA when available, else CPU) | cpu | cuda | cuda:N
    data: DataConfig = field(default_factory=DataConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    supernet: SupernetOptions = field(default_factory=SupernetOptions)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    standalone: StandaloneConfig = field(default_factory=StandaloneConfig)
    # modules or .py files run before the verb (with --import): user spaces, ops, blocks, datasets
    imports: list[str] = field(default_factory=list)
    prune: PruneConfig = field(default_factory=PruneConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the YAML file, then `section.field=value` overrides (values parsed as YAML)."""
    raw: dict[str, Any] = {}
    if path is not None:
        raw = _read_yaml(Path(path))
    for item in overrides or []:
        _apply_override(raw, item)
    return config_from_dict(raw)


def config_from_dict(raw: Mapping[str, Any]) -> Config:
    """A Config from a mapping of sections; every numeric field is checked for its range."""
    config = _build(Config, raw, "")
    validate(config)
    check_owned_options(config)
    return config


def options_of(cls: type, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """`raw` checked by the options dataclass `cls` (a strategy's or a sampler's): unknown names refused,
    values coerced to the fields' types and checked by the one rules table; returns the coerced values."""
    built = _build(cls, raw, where)
    return {name: getattr(built, name) for name in raw}


def check_owned_options(config: Config, require_known: bool = False) -> None:
    """The chosen strategy's and sampler's own options, checked when they are registered already (a plugin's
    are checked once its module is imported: `require_known`, which also refuses an unknown name)."""
    from supernet.search import STRATEGIES
    from supernet.train.sampler import SAMPLERS

    if require_known:
        STRATEGIES.get(config.search.strategy)
        SAMPLERS.get(config.train.sampler)
    if config.search.strategy in STRATEGIES:
        options_of(STRATEGIES.get(config.search.strategy).config, config.search.options, "search.options")
    if config.train.sampler in SAMPLERS:
        options_of(SAMPLERS.get(config.train.sampler).options, config.train.sampler_options, "train.sampler_options")


# fields that became a strategy's or a sampler's own option: named in the error for an old config
MOVED = {
    **{
        f"search.{n}": f"search.options.{n}"
        for n in ("population", "iterations", "topk", "mutation_prob", "num_samples")
    },
    "train.sandwich_random": "train.sampler_options.random_paths",
    "train.constrained_bins": "train.sampler_options.bins",
    "train.drop_rate": "train.sampler_options.drop_rate",
}


def save_config(config: Config, path: Path) -> None:
    from supernet.core.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


class InvalidYaml(ConfigError):
    """Text that does not parse as YAML."""


MAX_CONFIG_BYTES = 1 << 20  # a config file larger than this is refused unread
MAX_YAML_NODES = 100_000  # nodes after alias expansion: bounds an alias bomb ("billion laughs")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            blob = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror or e}") from None
    if len(blob) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config {path} is larger than {MAX_CONFIG_BYTES} bytes; a config is a few lines of YAML")
    try:
        data = parse_yaml(blob.decode(), f"config {path}")
    except UnicodeDecodeError as e:
        raise ConfigError(f"cannot read config {path}: {_first_line(e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping of sections, got {type(data).__name__}")
    return data


def parse_yaml(text: str, what: str) -> Any:
    """`yaml.safe_load` that refuses documents expanding to more than MAX_YAML_NODES nodes (alias
    bombs, recursive aliases) before building them; errors are one line naming `what`."""
    loader = None
    try:
        loader = _UniqueKeyLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expanded_size(node, what)
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise InvalidYaml(f"{what} is not valid YAML: {' '.join(_first_line(e).split())}") from None
    except RecursionError:
        raise ConfigError(f"{what} is nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


class _UniqueKeyLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses a mapping holding the same key twice (PyYAML keeps the last one
    silently: a config with two `train:` sections trained with the second). Keys brought in by a
    `<<` merge may still be overridden, as YAML intends."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {str(key)[:60]!r} (line {key_node.start_mark.line + 1}); "
                    f"each key may appear once in a mapping",
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _check_expanded_size(root: yaml.Node, what: str) -> None:
    """Count the nodes the document would have with every alias expanded, stopping at the bound."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise ConfigError(f"{what} holds a recursive YAML alias")
        open_nodes.add(key)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        total = 1
        for child in children:
            total += size(child)
            if total > MAX_YAML_NODES:
                raise ConfigError(
                    f"{what} expands to more than {MAX_YAML_NODES} YAML nodes through its aliases "
                    f"(an alias bomb?); refused"
                )
        open_nodes.discard(key)
        sizes[key] = total
        return total

    size(root)


def _apply_override(raw: dict[str, Any], item: str) -> None:
    key, sep, text = item.partition("=")
    parts = key.strip().split(".")
    if not sep or len(parts) < 2 or not all(parts):
        raise ConfigError(f"override {item!r} must look like section.field=value (e.g. train.epochs=3)")
    try:
        value = parse_yaml(text, f"override {key.strip()}") if text.strip() else None
    except InvalidYaml:
        value = text
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {item!r}: '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config section '{prefix or 'root'}' must be a mapping, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        where = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        if where in MOVED:
            raise ConfigError(f"config field '{where}' is now the strategy's or sampler's own option: {MOVED[where]}")
        raise ConfigError(f"unknown config field '{where}'; known: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in raw.items():
        path = f"{prefix}.{name}" if prefix else name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, path)
        else:
            values[name] = _coerce(value, hint, path)
    return cls(**values)


def _coerce(value: Any, hint: Any, path: str) -> Any:
    """Check `value` against a simple type hint (int, float, bool, str, dict, list, Optional)."""
    is_union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    options = typing.get_args(hint) if is_union else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise ConfigError(f"config field '{path}' must not be empty; expected {_name(hint)}")
    for option in options:
        base = typing.get_origin(option) or option
        if base is bool and isinstance(value, bool):
            return value
        if base is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if base is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
            number = _finite_float(value)
            if number is None:
                continue
            return number
        if base is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        if base in (dict, list) and isinstance(value, base):
            return value
    raise ConfigError(f"config field '{path}' must be {_name(hint)}, got {value!r}")


def _finite_float(value: float | str) -> float | None:
    """The value as a finite float, or None. Accepts numbers YAML 1.1 leaves as strings ('1e308')."""
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _name(hint: Any) -> str:
    args = typing.get_args(hint)
    if args:
        return " or ".join("null" if a is type(None) else getattr(a, "__name__", str(a)) for a in args)
    return getattr(hint, "__name__", str(hint))


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
