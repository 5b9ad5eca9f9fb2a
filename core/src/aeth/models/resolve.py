"""Turn a model reference (built-in name, local directory or hub id) into a checked local directory."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from aeth.errors import ModelError
from aeth.models.builtin import BUILTIN_MODELS, ensure_builtin
from aeth.models.safety import check_model_dir

if TYPE_CHECKING:
    from aeth.config import Config

# org/name, optionally @revision (a branch, tag, commit or refs/pr/N); names as the hub allows them.
_HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<revision>[\w./-]+))?$")

#: What is fetched from the hub: weights in safetensors form, configs and tokenizer files. Pickle
#: weights are never downloaded (they would never be loaded anyway).
HUB_ALLOW_PATTERNS = ["*.safetensors", "*.json", "*.jinja", "*.model", "*.txt", "*.tiktoken", "tokenizer*"]

_FALLBACK_HINT = "or use the offline built-in model smollm2-135m-instruct"


def parse_hub_id(ref: str) -> tuple[str, str | None] | None:
    """``(repo_id, revision)`` when ``ref`` is shaped like ``org/name[@revision]``, else None."""
    m = _HUB_ID.match(ref)
    return (m["repo"], m["revision"]) if m else None


def resolve_model(ref: str, config: Config) -> Path:
    """A local, safety-checked model directory for ``ref``.

    ``ref`` is, in this order: a built-in name (converted once into ``$AETH_HOME/models``), an
    existing local directory (``~`` expanded), or a hub id ``org/name[@revision]`` (downloaded into
    the Hugging Face cache, safetensors only). Anything else raises :class:`ModelError`.
    """
    ref = ref.strip()
    if ref in BUILTIN_MODELS:
        return ensure_builtin(ref, config.home)
    local = Path(ref).expanduser()
    if local.is_dir():
        check_model_dir(local)
        return local.resolve()
    if local.exists():
        raise ModelError(f"model {ref!r} is a file, not a model directory; point at the directory holding config.json")
    hub = parse_hub_id(ref)
    if hub is not None:
        return _from_hub(*hub, trust_remote_code=config["model.trust_remote_code"])
    raise ModelError(
        f"no model named {ref!r}: not a built-in model ({', '.join(sorted(BUILTIN_MODELS))}), "
        "not an existing local directory, and not a hub id like org/name or org/name@revision"
    )


def hub_offline() -> bool:
    """True when Hugging Face offline mode is on (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``).

    huggingface_hub reads these variables once, at import; aeth also reads them at call time so
    that setting one later still keeps aeth off the network.
    """
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
            return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _from_hub(repo_id: str, revision: str | None, *, trust_remote_code: bool) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    label = repo_id + (f"@{revision}" if revision else "")
    offline = hub_offline()
    # A model's own Python code is fetched only when the user allowed it to run.
    patterns = HUB_ALLOW_PATTERNS + (["*.py"] if trust_remote_code else [])
    try:
        snapshot = snapshot_download(repo_id, revision=revision, allow_patterns=patterns, local_files_only=offline)
    except RevisionNotFoundError as e:
        raise ModelError(f"hub model {repo_id} has no revision {revision!r}; check the branch, tag or commit") from e
    except GatedRepoError as e:
        raise ModelError(
            f"hub model {label} is gated: accept its terms on huggingface.co and log in (`hf auth login`)"
        ) from e
    except RepositoryNotFoundError as e:
        raise ModelError(
            f"hub model {label} was not found (or is private: log in with `hf auth login`); check the id"
        ) from e
    except LocalEntryNotFoundError as e:  # offline, no connection, or an incomplete cached snapshot
        why, online = (("offline mode is on (HF_HUB_OFFLINE)", "unset HF_HUB_OFFLINE and run once online")
                       if offline else ("the hub could not be reached", "run once with a network connection"))
        raise ModelError(
            f"hub model {label} is not in the local Hugging Face cache (nor a local directory) and {why}. "
            f"Fix: {online} to download it, or point at a local directory holding the model, {_FALLBACK_HINT}."
        ) from e
    except HFValidationError as e:
        raise ModelError(f"{label!r} is not a valid hub id: {e}") from e
    except (HfHubHTTPError, OSError) as e:
        raise ModelError(f"downloading hub model {label} failed: {type(e).__name__}: {e}") from e

    path = Path(snapshot)
    try:
        check_model_dir(path)
    except ModelError as e:
        raise ModelError(
            f"hub model {label} cannot be used: {e} Only *.safetensors weights are downloaded and loaded; "
            "pick a revision that has them (many repos have a `refs/pr/N` safetensors conversion, "
            f"usable as {repo_id}@refs/pr/N), {_FALLBACK_HINT}."
        ) from e
    return path
