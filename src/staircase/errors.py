"""The exceptions a user sees as one line: a configuration problem, and a result file that cannot
be read.

They live here, below every layer, so that a training job or a results reader can reject a value
with the same error the config check raises, and the command line can name either without
importing the layers that raise them.
"""


class ConfigError(ValueError):
    """A configuration problem; str() is one line naming the key."""


class UnreadableResult(ValueError):
    """A result file that exists but cannot be read: damaged or cut short (a disk that filled up,
    a copy interrupted). Its message names the file and the remedy."""
