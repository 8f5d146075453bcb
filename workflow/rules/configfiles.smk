import os
import sys

from staircase.errors import ConfigError
from staircase.workflow import loader


def check_config_files():
    """Every config file of this run, read strictly (staircase.workflow.loader): a file Snakemake
    would misread, or whose alias bomb or template would hang or run code, stops here, named.
    """
    # config.yaml only when no --configfile replaces it (the Snakefile)
    default = (
        ["config.yaml"]
        if os.path.exists("config.yaml") and not workflow.overwrite_configfiles
        else []
    )
    for path in [*default, *workflow.overwrite_configfiles]:
        try:
            loader.load_config_file(path)
        except ConfigError as err:
            print(f"config error: {err}", file=sys.stderr)
            sys.exit(1)


check_config_files()
