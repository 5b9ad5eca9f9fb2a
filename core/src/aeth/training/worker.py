"""A torchrun worker: runs the ``aeth`` command line that :func:`aeth.training.distributed.launch`
put in the environment (torchrun's own parser would misread aeth's options on its command line)."""

import json
import os
import sys

from aeth.training.distributed import ARGV_ENV

if __name__ == "__main__":
    from aeth.cli import main

    sys.argv = ["aeth", *json.loads(os.environ[ARGV_ENV])]
    main()
