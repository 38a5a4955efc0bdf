"""The degeneration guard: streaming loop detection and the recovery policy (pure Python,
with its per-token modules compiled by mypyc where built: app/guard/native.py)."""

import logging as _logging
import os as _os

from . import native as _native

_state = "disabled" if _os.environ.get(_native.ENV, "1") == "0" else _native.state()
if _state == "current":
    # the package's own folder comes second: the modules not compiled are found there
    __path__.insert(0, str(_native.FOLDER))
elif _state == "stale":
    _logging.getLogger(__name__).warning(
        "%s was built from other sources: the guard runs interpreted (rebuild: "
        "python -m app.guard_build)",
        _native.FOLDER,
    )

from . import detector as _detector  # noqa: E402
from .config import DEFAULT_CONFIG, GuardConfig  # noqa: E402
from .detector import LoopDetector, scan  # noqa: E402
from .verdict import LOOP_KINDS, LoopKind, Verdict  # noqa: E402

# Whether the compiled modules were loaded (an extension module, not a source file).
NATIVE = not str(_detector.__file__).endswith(".py")

__all__ = [
    "DEFAULT_CONFIG",
    "GuardConfig",
    "LOOP_KINDS",
    "LoopDetector",
    "LoopKind",
    "NATIVE",
    "Verdict",
    "scan",
]
