"""VADER's human-scored Amazon review sentences, fetched from the vaderSentiment 3.3.2 sdist.

Hutto & Gilbert (ICWSM 2014) had at least 20 people rate each of 3,708 sentences from Amazon
product reviews on a -4..+4 scale; the file ``amazonReviewSnippets_GroundTruth.txt`` holds
``id <TAB> mean rating <TAB> sentence`` per line (CRLF line ends). It ships, under the MIT
licence, only in the *source* archive of vaderSentiment 3.3.2, nested in a second archive
(``vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz``); neither the wheel nor an
sdist install puts it on disk. So it is fetched once, at install time, into
``<sys.prefix>/share/aeth-benchmarks/vader-3.3.2/``::

    python -m aetherial_ecommerce.vader_data            # pip download + extract, if missing

Only that one member is read out of the archives (by name, never ``extractall``), and it is
written as a temporary file that is fsynced and renamed into place, so a crash never leaves a
half-written file where :func:`load` looks.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from aeth.errors import SpecialistError

DISTRIBUTION = "vaderSentiment==3.3.2"
SDIST = "vaderSentiment-3.3.2.tar.gz"
INNER_ARCHIVE = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
MEMBER = "hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt"
FILE_NAME = "amazonReviewSnippets_GroundTruth.txt"
FETCH_COMMAND = "python -m aetherial_ecommerce.vader_data"


def default_dir() -> Path:
    """Where the file is installed: ``<sys.prefix>/share/aeth-benchmarks/vader-3.3.2``."""
    return Path(sys.prefix) / "share" / "aeth-benchmarks" / "vader-3.3.2"


def default_path() -> Path:
    """The installed ``amazonReviewSnippets_GroundTruth.txt`` (which may not exist yet)."""
    return default_dir() / FILE_NAME


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a shared venv's data must be readable by all
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def extract(sdist: str | Path, dest_dir: str | Path) -> Path:
    """Copy the Amazon ground-truth file out of the (nested) sdist archive into ``dest_dir``.

    Returns the written file's path. A missing member raises :class:`SpecialistError`.
    """
    sdist, dest = Path(sdist), Path(dest_dir) / FILE_NAME
    try:
        with tarfile.open(sdist, "r:gz") as outer:
            inner_file = outer.extractfile(INNER_ARCHIVE)
            if inner_file is None:
                raise KeyError(INNER_ARCHIVE)
            inner = inner_file.read()
        with tarfile.open(fileobj=io.BytesIO(inner), mode="r:gz") as archive:
            member = archive.extractfile(MEMBER)
            if member is None:
                raise KeyError(MEMBER)
            data = member.read()
    except (KeyError, tarfile.TarError, OSError) as e:
        raise SpecialistError(f"{sdist}: cannot read {MEMBER} from {INNER_ARCHIVE} inside it ({e}); "
                              f"is it the sdist of {DISTRIBUTION}?") from None
    _write_atomically(dest, data)
    return dest


def download_sdist(into: str | Path) -> Path:
    """``pip download`` the vaderSentiment 3.3.2 source archive (not the wheel) into ``into``."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", DISTRIBUTION, "-d", str(into)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    sdist = Path(into) / SDIST
    if done.returncode != 0 or not sdist.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise SpecialistError(f"could not download the {DISTRIBUTION} source archive with `{' '.join(cmd[2:])}` "
                              f"(exit {done.returncode}): {' '.join(tail)}")
    return sdist


def fetch(dest_dir: str | Path | None = None, force: bool = False) -> Path:
    """Download the sdist into a temporary directory and extract the file into ``dest_dir``.

    ``dest_dir`` defaults to :func:`default_dir`. When the file is already there nothing is
    downloaded unless ``force``. Returns the file's path.
    """
    dest_dir = Path(dest_dir) if dest_dir is not None else default_dir()
    target = dest_dir / FILE_NAME
    if target.is_file() and not force:
        return target
    with tempfile.TemporaryDirectory(prefix="aeth-vader-") as tmp:
        return extract(download_sdist(tmp), dest_dir)


def parse(text: str, where: str = FILE_NAME) -> list[dict]:
    """``[{"id", "mean_sentiment", "text"}, ...]`` from the file's text; a bad line raises naming it."""
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        try:
            if len(parts) != 3 or not parts[2].strip():
                raise ValueError("expected id, mean rating and text separated by tabs")
            rows.append({"id": parts[0].strip(), "mean_sentiment": float(parts[1]), "text": parts[2].strip()})
        except ValueError as e:
            raise SpecialistError(f"{where}:{n}: malformed line ({e}); re-fetch it with `{FETCH_COMMAND}`") from None
    return rows


def load(path: str | Path | None = None) -> list[dict]:
    """The 3,708 rated sentences, from ``path`` or the default location.

    Raises :class:`SpecialistError` naming the command that fetches the file when it is missing.
    """
    path = Path(path) if path is not None else default_path()
    if not path.is_file():
        raise SpecialistError(f"the review_sentiment eval needs VADER's Amazon review sentences, not found at {path}; "
                              f"fetch them (once, needs the package index) with `{FETCH_COMMAND}`")
    return parse(path.read_text(encoding="utf-8"), str(path))


def main(argv: list[str] | None = None) -> int:
    """``python -m aetherial_ecommerce.vader_data [--dest DIR] [--force]``: fetch the file."""
    parser = argparse.ArgumentParser(prog=FETCH_COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=None, help=f"directory to install into (default: {default_dir()})")
    parser.add_argument("--force", action="store_true", help="download again even if the file is present")
    args = parser.parse_args(argv)
    try:
        path = fetch(args.dest, force=args.force)
    except SpecialistError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
