"""aeth: narrow AI specialists, routed, trained, distilled and improved from feedback.

The public API for plugin authors and applications. Importing ``aeth`` never imports torch.
"""

from aeth.errors import AethError, ConfigError, ModelError, PluginError, PolicyBlocked, RoutingError, SpecialistError
from aeth.hookspecs import hookimpl
from aeth.request import Bid, GenerationContext, Request, Response, Sampling
from aeth.specialist import AdapterSpec, DatasetRecipe, EvalCase, EvalSuite, GenerationDefaults, Specialist

__version__ = "0.1.0"

__all__ = [
    "AdapterSpec",
    "AethError",
    "Bid",
    "ConfigError",
    "DatasetRecipe",
    "EvalCase",
    "EvalSuite",
    "GenerationContext",
    "GenerationDefaults",
    "ModelError",
    "PluginError",
    "PolicyBlocked",
    "Request",
    "Response",
    "RoutingError",
    "Sampling",
    "Specialist",
    "SpecialistError",
    "hookimpl",
]
