"""``staircase collapse`` (paper B), ``staircase align`` (paper C), ``staircase collapse-merge`` and
``staircase lowrank-studies``.

The workflow passes a study's resolved config as JSON; by hand, name the study::

    staircase lowrank-studies --config config.yaml
    staircase collapse --config config.yaml --study digits_lambda --out /tmp/collapse
    staircase align --config config.yaml --study digits01_ngd --out /tmp/align

A rank_collapse study split into one job per lambda x noise cell (``split: cells``, docs/full-scale.md)
trains each cell with ``--part K`` and joins them with ``collapse-merge``::

    staircase collapse --config config.yaml --study grid --part 0 --out /tmp/grid/parts/0
    staircase collapse-merge --config config.yaml --study grid --parts /tmp/grid/parts/* --out /tmp/grid
"""

from __future__ import annotations

import argparse

from staircase.errors import ConfigError
from staircase.workflow import lowrank_settings as settings
from staircase.workflow.overrides import SET_HELP

COMMANDS = {"collapse": "rank_collapse", "align": "alignment"}


def _run_config(args, family: str, load_config, read_run_config) -> dict:
    if args.run_config:
        cfg = read_run_config(args.run_config)
        settings.check_run(cfg, family)
        return cfg
    if not (args.config and args.study):
        raise ConfigError(f"staircase {args.command}: give --run-config, or --config with --study")
    config = load_config(args.config, args.set)
    studies = settings.studies(config, family)
    if args.study not in studies:
        have = sorted(studies)
        raise ConfigError(f"staircase {args.command}: {family} has no enabled study {args.study!r}; have {have}")
    return studies[args.study]


def checked_part(part: int | None, cfg: dict) -> int | None:
    """--part K names one of the study's lambda x noise cells, 0 .. cells - 1."""
    from staircase.training import collapse

    cells = collapse.grid_cells(cfg)
    if part is not None and not 0 <= part < cells:
        study = cfg["study"]
        raise ConfigError(f"--part {part}: study {study} has {cells} lambda x noise cells: give 0 to {cells - 1}")
    return part


def add_commands(sub, load_config, read_run_config, check_job_start) -> None:
    """Register the subcommands on the main parser's subparsers, with the main CLI's validated
    config loader ``load_config(path, overrides)``, its --run-config reader and its start checks
    (device, writable output folder)."""

    def train(args) -> int:
        family = COMMANDS[args.command]
        cfg = _run_config(args, family, load_config, read_run_config)
        check_job_start(args, cfg)
        # the training modules (and torch) load with the command that runs them, as in cli.py
        from staircase.training import alignment, collapse

        if family == "rank_collapse":
            part = checked_part(args.part, cfg)
            collapse.run(cfg, args.out, progress=not args.no_progress, part=part)
        else:
            alignment.run(cfg, args.out, progress=not args.no_progress)
        return 0

    def merge(args) -> int:
        cfg = _run_config(args, "rank_collapse", load_config, read_run_config)
        check_job_start(args, cfg)
        from staircase.training import collapse_parts

        out = collapse_parts.merge(cfg, args.parts, args.out)
        print(f"staircase: rank_collapse/{cfg['study']}: {len(args.parts)} parts merged; results in {out}")
        return 0

    def list_studies(args) -> int:
        config = load_config(args.config_file or args.config, args.set)
        for family in settings.FAMILIES:
            tags = settings.claims_of(config, family)
            for name, cfg in settings.studies(config, family).items():
                print(f"{family}\t{name}\tclaims={tags[name]}\tseeds={cfg['seeds']}")
        return 0

    helps = {
        "collapse": "paper B: train one rank_collapse study (lambda x noise x seed grid, stacked)",
        "align": "paper C: train one alignment study (all seeds stacked)",
    }
    for name, text in helps.items():
        p = sub.add_parser(name, help=text)
        p.add_argument("--run-config", help="resolved study config as JSON, or @file")
        p.add_argument("--config", help="config.yaml (with --study)")
        p.add_argument("--study", help="the study of config.yaml to train (with --config)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)
        p.add_argument("--out", required=True, help="output folder")
        p.add_argument("--device", help="cpu, cuda or auto (overrides the config)")
        p.add_argument("--no-progress", action="store_true", help="no progress line")
        if name == "collapse":
            p.add_argument("--part", type=int, help="train only lambda x noise cell K (0-based, all its seeds)")
        p.set_defaults(func=train)
    p = sub.add_parser("collapse-merge", help="paper B: join a study's parts (collapse --part K) into its files")
    p.add_argument("--run-config", help="resolved study config as JSON, or @file")
    p.add_argument("--config", help="config.yaml (with --study)")
    p.add_argument("--study", help="the study of config.yaml to merge (with --config)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)
    p.add_argument("--parts", nargs="+", required=True, help="the output folders of all its parts, in any order")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--device", help=argparse.SUPPRESS)
    p.set_defaults(func=merge)
    p = sub.add_parser("lowrank-studies", help="list the enabled studies of papers B and C")
    p.add_argument("--config", default="config.yaml", metavar="CONFIG", help="the configuration file")
    p.add_argument("config_file", nargs="?", metavar="CONFIG", help="the same as --config (kept for old scripts)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)
    p.set_defaults(func=list_studies)
