"""A torchrun worker of a run that :func:`aeth.training.run` launched: it rebuilds the launcher's
app, specialist and plan from the launch file named in the environment and trains its share
(:func:`aeth.training.runs.work`). A torchrun of its own needs no aeth command line to parse."""

import os
import sys

from aeth.training.distributed import LAUNCH_ENV

if __name__ == "__main__":
    from aeth.errors import AethError
    from aeth.training.runs import work

    try:
        work(os.environ[LAUNCH_ENV])
    except AethError as e:  # said once, as the CLI would, not as a traceback per rank
        print(f"Error: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
