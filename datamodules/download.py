"""Load a torchvision data set, downloading it when it is missing, with a clear message
when that is impossible (offline, read-only folder)."""

import os
from typing import Any

from netscope.core.errors import UserError


def load_torchvision(dataset_cls: type, root: str, expected: str, **kwargs: Any) -> Any:
    """Instantiate ``dataset_cls(root, ..., download=False)``, downloading first if needed.

    Args:
        dataset_cls: a torchvision data set class (``MNIST``, ``CIFAR10``, ...).
        root: the data folder; read-only is fine when the files are there.
        expected: the files or folders the data set needs, named in the error message.
        **kwargs: passed on (``train=True``, ...).

    Raises:
        UserError: the data set is absent and could not be downloaded.
    """
    try:
        return dataset_cls(root, download=False, **kwargs)
    except RuntimeError:
        pass  # not there yet: try to download it
    name = dataset_cls.__name__
    try:
        os.makedirs(root, exist_ok=True)
        return dataset_cls(root, download=True, **kwargs)
    except Exception as error:  # network errors come as many types (URLError, OSError, ...)
        raise UserError(
            f"{name} is not in '{os.path.abspath(root)}' and could not be downloaded "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else 'no detail'}). "
            f"Expected {expected}. Either connect to the internet and run again (it is "
            f"downloaded once), or point --data.init_args.data_dir at a local copy."
        ) from error
