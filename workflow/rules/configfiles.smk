import os
import sys

from staircase.errors import ConfigError
from staircase.workflow import loader


def check_config_files():
    """Every config file of this run, and every --config value Snakemake read as YAML, read
    strictly (staircase.workflow.loader): a file or value Snakemake would misread, or whose alias
    bomb or template would hang or run code, stops here, named.
    """
    # config.yaml only when no --configfile replaces it (the Snakefile)
    default = (
        ["config.yaml"]
        if os.path.exists("config.yaml") and not workflow.overwrite_configfiles
        else []
    )
    settings = workflow.config_settings
    try:
        for path in [*default, *workflow.overwrite_configfiles]:
            loader.load_config_file(path)
        # --config values Snakemake read as YAML (lists, mappings), read strictly too
        loader.check_config_args(settings.config_args, settings.config or {})
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        sys.exit(1)


check_config_files()
