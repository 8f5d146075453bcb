"""The one exception every layer raises for bad input: a configuration problem, one line.

It lives here, below every layer, so that a training job or a results reader can reject a value
with the same error the config check raises, without importing the workflow layer above it.
"""


class ConfigError(ValueError):
    """A configuration problem; str() is one line naming the key."""
