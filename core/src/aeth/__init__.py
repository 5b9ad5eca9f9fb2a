"""aeth: narrow AI specialists, routed, trained, distilled and improved from feedback.

The public API for plugin authors and applications: the application object (:class:`Aeth`), the
hook marker, and the types hooks pass. Importing ``aeth`` never imports torch; the application,
training and eval types are imported on first use.
"""

from typing import TYPE_CHECKING, Any

from aeth.config import Config
from aeth.errors import AethError, ConfigError, ModelError, PluginError, PolicyBlocked, RoutingError, SpecialistError
from aeth.hookspecs import hookimpl
from aeth.quality import Quality
from aeth.request import Bid, GenerationContext, Request, Response, Sampling
from aeth.safety.policy import Policy
from aeth.specialist import AdapterSpec, DatasetRecipe, EvalCase, EvalSuite, GenerationDefaults, Specialist

if TYPE_CHECKING:
    from aeth.app import Aeth, Answer
    from aeth.evals.runner import CaseResult, EvalReport
    from aeth.training.plan import TrainPlan, TrainResult

__version__ = "0.1.0"

#: public names imported on first use: name -> module
_LAZY = {
    "Aeth": "aeth.app",
    "Answer": "aeth.app",
    "AethWarning": "aeth.plugins",
    "CaseResult": "aeth.evals.runner",
    "EvalReport": "aeth.evals.runner",
    "TrainPlan": "aeth.training.plan",
    "TrainResult": "aeth.training.plan",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aeth' has no attribute {name!r}")


__all__ = [
    "AdapterSpec",
    "Aeth",
    "AethError",
    "AethWarning",
    "Answer",
    "Bid",
    "CaseResult",
    "Config",
    "ConfigError",
    "DatasetRecipe",
    "EvalCase",
    "EvalReport",
    "EvalSuite",
    "GenerationContext",
    "GenerationDefaults",
    "ModelError",
    "PluginError",
    "Policy",
    "PolicyBlocked",
    "Quality",
    "Request",
    "Response",
    "RoutingError",
    "Sampling",
    "Specialist",
    "SpecialistError",
    "TrainPlan",
    "TrainResult",
    "hookimpl",
]
